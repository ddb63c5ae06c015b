"""``run_trial`` on its own: it never raises, and trials do not leak memory on a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from supervisor.execution.trial import TrialSpec
from supervisor.execution.worker import run_trial

TOY = "tests.toy_benchmark:ToyBenchmark"


def spec(number: int = 0, **overrides: Any) -> TrialSpec:
    fields: dict[str, Any] = {
        "study_name": "s",
        "trial_number": number,
        "params": {"x": 1.0},
        "benchmark": "toy",
        "benchmark_target": TOY,
        "options": {"delay": 0.0, "offset": 2.0},
        "epochs": 2,
        "seed": number,
        "data_seed": 0,
        "objectives": ("loss",),
        "isolation": "inline",
    }
    fields.update(overrides)
    return TrialSpec(**fields)


def test_a_good_trial_returns_values_metrics_and_history() -> None:
    result = run_trial(spec())
    assert result.status == "complete" and result.values == [1.0]
    assert [h["epoch"] for h in result.history] == [0.0, 1.0]
    assert result.metrics["node_seconds"] == result.metrics["train_seconds"]
    assert result.finished >= result.started and result.pid and result.hostname


def test_nothing_escapes_as_an_exception() -> None:
    cases = {
        "raise": spec(params={"x": 1.0, "mode": "raise"}),
        "nan": spec(params={"x": 1.0, "mode": "nan"}),
        "missing metric": spec(objectives=("accuracy",)),
        "no such module": spec(benchmark_target="nowhere.at_all:Bench"),
        "bad option": spec(options={"delay": "slow"}),
    }
    for case, bad in cases.items():
        result = run_trial(bad)
        assert result.status == "failed", case
        assert result.failure == "model" and result.error and result.error_type, case
    assert "exploded on purpose" in (run_trial(cases["raise"]).traceback or "")


def test_weather_trials_leave_no_keras_state_behind() -> None:
    # Memory over many trials is checked per benchmark in test_benchmark_conformance.py.
    weather = {
        "benchmark": "weather",
        "benchmark_target": "benchmarks_sci.weather:WeatherBenchmark",
        "options": {"n_train": 128, "n_val": 64, "n_test": 64},
        "objectives": ("val_accuracy",),
        "epochs": 1,
    }
    params = {"batch_size": 64, "dense_units": 16}
    import keras

    for i in range(3):
        result = run_trial(spec(i, params=params, **weather))
        assert result.status == "complete", result.error
        assert result.extra["precision"] == "float32"  # a CPU node: no mixed precision
        # The session was cleared: layer names restart from scratch, as in a new process.
        assert keras.layers.Dense(1).name == "dense"
        keras.backend.clear_session()


def test_artifacts_are_saved_in_the_trial_directory(tmp_path: Path) -> None:
    result = run_trial(spec(7, params={"x": 3.0, "artifacts": True}, run_dir=str(tmp_path)))
    assert result.status == "complete"
    saved = tmp_path / result.extra["artifacts"]
    assert saved == tmp_path / "trials" / "000007" / "artifacts.npz"
    with np.load(saved) as f:
        assert np.allclose(f["curve"], np.linspace(0.0, 3.0, 5))
    # Without artifacts, or without a run directory, nothing is written.
    assert "artifacts" not in run_trial(spec(8, run_dir=str(tmp_path))).extra
    assert "artifacts" not in run_trial(spec(9, params={"x": 1.0, "artifacts": True})).extra
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["000007"]


def test_a_full_disk_is_said_as_such_not_as_the_model_s_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC or EDQUOT while a trial writes: a checkpoint in ``fit`` fails the trial as
    ``disk_full`` (run again, not counted; it was the model's failure, and every trial of
    a campaign on that disk burned its budget so); arrays that cannot be kept leave the
    trial complete, the disk's error noted for the driver to stop on."""
    import errno

    from supervisor.benchmarks.checkpoint import Checkpoint
    from supervisor.execution.trial import DISK_FULL

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", "x.npz")

    monkeypatch.setattr(np, "savez_compressed", full)
    kept = run_trial(spec(7, params={"x": 3.0, "artifacts": True}, run_dir=str(tmp_path)))
    assert kept.status == "complete" and kept.failure is None
    assert kept.extra[DISK_FULL] == "OSError: [Errno 122] Disk quota exceeded: 'x.npz'"

    def fit(self: Any, *args: Any, **kwargs: Any) -> None:
        Checkpoint(tmp_path / "c", 1).save(0, [], {"w": np.zeros(4)})

    monkeypatch.setattr(np, "savez", full)
    monkeypatch.setattr("tests.toy_benchmark.ToyBenchmark.fit", fit)
    failed = run_trial(spec(8, run_dir=str(tmp_path)))
    assert failed.status == "failed" and failed.failure == "disk_full"
    assert failed.extra[DISK_FULL] == "OSError: [Errno 122] Disk quota exceeded: 'x.npz'"
    assert list((tmp_path / "c").iterdir()) == []  # no half-written checkpoint kept


def test_a_full_disk_while_keeping_a_model_is_said_for_the_driver_to_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keep_models``: a model that cannot be saved leaves its trial complete, noted;
    a full disk is said as such (every later trial would lose its model too)."""
    import errno

    from supervisor.execution.trial import DISK_FULL, KeepModel

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "model.npz")

    monkeypatch.setattr(
        "tests.toy_benchmark.ToyBenchmark.model_arrays", lambda self, model: {"w": np.ones(3)}
    )
    monkeypatch.setattr(np, "savez", full)
    kept = run_trial(spec(9, run_dir=str(tmp_path), keep_model=KeepModel()))
    assert kept.status == "complete" and "model" not in kept.extra
    assert kept.extra["model_error"].startswith("model not kept: OSError: [Errno 28]")
    assert kept.extra[DISK_FULL] == "OSError: [Errno 28] No space left on device: 'model.npz'"
