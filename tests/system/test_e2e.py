"""The real ``supervisor search`` command with the weather ConvNet on a LocalCluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from supervisor.study.storage import load_study

SPACE = """\
study: weather-e2e
benchmark:
  name: weather
  options: {task: tc, n_train: 256, n_val: 128, n_test: 128}
objectives: [{metric: val_accuracy, direction: maximize}]
params:
  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  filters1: {type: int, low: 4, high: 8, step: 4}
  optimizer: [adam, sgd]
  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}
fixed: {batch_size: 64, dense_units: 16}
sampler: random
budget: {trials: 4, epochs: 2}
seed: 1
keep_models: 1
"""


@pytest.mark.e2e
def test_weather_search_fills_storage_and_writes_a_report(tmp_path: Path) -> None:
    (tmp_path / "weather.yaml").write_text(SPACE)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "supervisor.cli", "search", "weather.yaml"),
            *("--workers", "2", "--threads", "1", "--plain", "--dashboard", ":0"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Finished trials: 4 of 4 requested" in result.stdout

    study = load_study(f"journal:{tmp_path}/runs/weather-e2e/journal.log", "weather-e2e")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4, [t.user_attrs.get("error") for t in study.trials]
    workers = set()
    for t in trials:
        assert t.value is not None and 0.0 <= t.value <= 1.0
        assert sorted(t.intermediate_values) == [0, 1]
        assert t.user_attrs["metrics"]["n_params"] > 0
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        workers.add(t.user_attrs["worker"])
    assert len(workers) == 2  # both worker processes trained

    report = tmp_path / "reports" / "weather-e2e.html"
    html = report.read_text()
    assert "weather-e2e" in html and "learning_rate" in html
    assert 'src="http' not in html

    # The best trial's ConvNet, loaded back from its kept weights, scores what it did.
    import numpy as np

    import supervisor

    run = supervisor.open_run(tmp_path / "runs" / "weather-e2e")
    best = run.best
    assert run.kept_models == [best.number]
    bench = run.benchmark()
    data = bench.load_data(1)
    probs = bench.predict(run.model(), data.x_val)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == data.y_val))
    assert accuracy == best.value == best.user_attrs["metrics"]["val_accuracy"]

    # Exported as a .keras file, it computes the same in Keras alone.
    import keras

    exported = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "export", "weather-e2e", "--model", "best"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    model_file = tmp_path / "runs" / "weather-e2e" / f"model-{best.number}.keras"
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.split()[0] == str(model_file.relative_to(tmp_path))
    alone = keras.saving.load_model(model_file, compile=False)
    np.testing.assert_allclose(alone.predict(data.x_val, verbose=0), probs, rtol=1e-5, atol=1e-6)
