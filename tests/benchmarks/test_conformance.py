"""Every registered benchmark keeps the contract of ``supervisor.benchmarks.base.Benchmark``.

Parametrized over the registry, so a new benchmark is checked by adding its name there:
it builds and trains on tiny data, names finite metrics, predicts the right shapes, is
reproducible under a seed, stays within bounded memory over 14 trials on one worker (its
trial process replaced when it grows),
round-trips its documented data layout, and runs on Keras' JAX backend too.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from supervisor.benchmarks import Benchmark, registry
from supervisor.config.space import COST_METRICS
from supervisor.execution.execute import execute
from supervisor.execution.trial import KeepModel, TrialSpec
from supervisor.execution.trial_host import TrialHost

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(registry.BUILTIN)
SPLITS = ("train", "val", "test")


def bench_class(name: str) -> type[Benchmark]:
    return registry.load(name)


def trial(name: str, number: int = 0, seed: int = 0, **overrides: Any) -> TrialSpec:
    cls = bench_class(name)
    fields: dict[str, Any] = {
        "study_name": "conformance",
        "trial_number": number,
        "params": dict(cls.tiny_params),
        "benchmark": name,
        "benchmark_target": registry.target(name),
        "options": dict(cls.tiny_options),
        "epochs": 1,
        "seed": seed,
        "data_seed": 0,
        "objectives": (next(iter(cls.metrics)),),
        "isolation": "inline",
    }
    fields.update(overrides)
    return TrialSpec(**fields)


@pytest.fixture(scope="module", params=NAMES)
def loaded(request: pytest.FixtureRequest) -> tuple[str, Benchmark, Any]:
    cls = bench_class(request.param)
    bench = cls(cls.tiny_options)
    return request.param, bench, bench.load_data(0)


@pytest.mark.parametrize("name", NAMES)
def test_declares_metrics_and_options_the_driver_can_check(name: str) -> None:
    cls = bench_class(name)
    assert cls.name == name
    assert cls.metrics and set(cls.metrics.values()) <= {"minimize", "maximize"}
    assert not set(cls.metrics) & set(COST_METRICS), "cost metrics are the supervisor's"
    assert "data_path" in cls.options and cls.options["data_path"].default == ""
    assert cls.validate_options(cls.tiny_options)  # tiny options are valid options


@pytest.mark.parametrize("name", NAMES)
def test_a_short_fit_on_tiny_data_names_finite_metrics(name: str) -> None:
    result = execute(trial(name))
    assert result.status == "complete", result.traceback
    cls = bench_class(name)
    for metric in (*cls.metrics, *COST_METRICS):
        assert metric in result.metrics, f"{name} did not return {metric}"
        assert math.isfinite(result.metrics[metric]), f"{name}: {metric} is not finite"
    assert len(result.history) == 1 and result.history[0]["epoch"] == 0.0
    # The pruner judges the first objective in each epoch's report: every validation
    # metric must be there, with the value the trial ends with.
    for metric in (m for m in cls.metrics if m.startswith("val_")):
        assert result.history[0].get(metric) == pytest.approx(result.metrics[metric]), metric
    assert result.metrics["n_params"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_gives_the_same_result(name: str) -> None:
    first, again = execute(trial(name, 0, seed=5)), execute(trial(name, 1, seed=5))
    assert first.status == again.status == "complete"
    cls = bench_class(name)
    for metric in cls.metrics:
        assert first.metrics[metric] == pytest.approx(again.metrics[metric], rel=1e-5, abs=1e-6)


def test_predictions_have_one_row_per_input(loaded: tuple[str, Benchmark, Any]) -> None:
    name, bench, data = loaded
    model = bench.build_model(type(bench).tiny_params, 0)
    predictions = np.asarray(bench.predict(model, data.x_val[:5]))
    assert predictions.shape[0] == 5, name
    assert np.isfinite(predictions).all(), name


def test_a_kept_model_loads_back_into_a_fresh_build(
    loaded: tuple[str, Benchmark, Any], tmp_path: Path
) -> None:
    """``keep_models``: what ``model_arrays`` saves, ``load_model_arrays`` puts into
    another build, which then predicts as the first did; a trial saves it to its folder."""
    name, bench, data = loaded
    params = type(bench).tiny_params
    first, other = bench.build_model(params, 0), bench.build_model(params, 1)
    inputs = [data.x_val[:4], bench.latency_inputs(first, data, 4)]
    before = [np.asarray(bench.predict(other, x)) for x in inputs]
    bench.load_model_arrays(other, bench.model_arrays(first))
    for x, old in zip(inputs, before, strict=True):
        wanted = np.asarray(bench.predict(first, x))
        assert not np.allclose(old, wanted), f"{name}: seeds 0 and 1 predict alike"
        np.testing.assert_allclose(np.asarray(bench.predict(other, x)), wanted, rtol=1e-6)

    result = execute(trial(name, run_dir=str(tmp_path), keep_model=KeepModel()))
    assert result.status == "complete" and "model_error" not in result.extra, result.extra
    with np.load(tmp_path / result.extra["model"]) as saved:
        arrays = {k: saved[k] for k in saved.files}
    bench.load_model_arrays(bench.build_model(params, 0), arrays)


def test_an_exported_model_file_loads_in_keras_alone(
    loaded: tuple[str, Benchmark, Any], tmp_path: Path
) -> None:
    """``export --model``: ``save_model`` writes a ``.keras`` file that Keras loads without
    the benchmark's code and that computes as the trained model: a seed-1 build given
    seed 0's arrays exports the same network as seed 0's build, and not seed 1's."""
    import keras

    name, bench, _ = loaded
    params = type(bench).tiny_params
    first, other = bench.build_model(params, 0), bench.build_model(params, 1)
    bench.save_model(first, tmp_path / "first.keras")
    bench.save_model(other, tmp_path / "other.keras")
    bench.load_model_arrays(other, bench.model_arrays(first))
    bench.save_model(other, tmp_path / "copied.keras")
    nets = {f: keras.saving.load_model(tmp_path / f"{f}.keras", compile=False) for f in
            ("first", "other", "copied")}  # fmt: skip
    rng = np.random.default_rng(0)
    inputs = [  # any inputs of the network's shapes; a free length is 16
        rng.standard_normal((2, *(16 if d is None else d for d in x.shape[1:]))).astype("float32")
        for x in nets["first"].inputs
    ]
    x = inputs[0] if len(inputs) == 1 else inputs
    out = {f: np.asarray(net.predict(x, verbose=0)) for f, net in nets.items()}
    assert not np.allclose(out["first"], out["other"]), f"{name}: seeds 0 and 1 alike"
    np.testing.assert_allclose(out["copied"], out["first"], rtol=1e-5, atol=1e-6)


def test_ensemble_outputs_aggregate_for_the_kind(loaded: tuple[str, Benchmark, Any]) -> None:
    """What a member saves (``ensemble_outputs``) is what the aggregator of the
    benchmark's kind reads: two members of different seeds make a scored ensemble."""
    from supervisor.ensemble.aggregate import Member, evaluate

    name, bench, data = loaded
    assert bench.ensemble_kind is not None, f"{name} declares no ensemble_kind"
    members = []
    for seed in (0, 1):
        model = bench.build_model(type(bench).tiny_params, seed)
        outputs = {k: np.asarray(v) for k, v in bench.ensemble_outputs(model, data).items()}
        members.append(Member(seed, "s", f"seed {seed}", 0.5, outputs))
    ev = evaluate(
        bench.ensemble_kind,
        members,
        decode=getattr(bench, "decode", None),
        identity=getattr(bench, "read_identity", None),
    )
    assert ev.headline in ev.ensemble and len(ev.members) == len(ev.by_size) == 2
    assert all(math.isfinite(v) for v in ev.ensemble.values() if v is not None), ev.ensemble


def test_saved_data_loads_back_the_same(
    loaded: tuple[str, Benchmark, Any], tmp_path: Path
) -> None:
    name, bench, data = loaded
    path = tmp_path / "data.npz"
    bench.save_data(data, path)
    again = type(bench)({**type(bench).tiny_options, "data_path": str(path)}).load_data(0)
    for split in SPLITS:
        for kind in ("x", "y"):
            want, got = getattr(data, f"{kind}_{split}"), getattr(again, f"{kind}_{split}")
            if want is None:
                assert got is None, f"{name}: {kind}_{split}"
                continue
            np.testing.assert_allclose(
                np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4, err_msg=name
            )


# Measured on 2 cores: each benchmark's trial process grows 8-36 MB a trial at first and
# outgrows 32 MB within 5 trials; a fresh one starts within 3 MB of the first.
MEMORY_LIMIT_MB = 32.0
TRIALS = 8


def trials_rss(name: str) -> list[tuple[float, bool]] | str:
    """(RSS of the trial process, whether the host then replaced it) after each of TRIALS
    trials on one host, or the first error."""
    # TensorFlow keeps a few MB per traced model (see supervisor.execution.trial_host): the trial
    # process is replaced when it has grown by the limit, so the worker stays bounded.
    host = TrialHost(growth_limit_mb=MEMORY_LIMIT_MB)
    try:
        rss = []
        for number in range(TRIALS):
            result = host.run(trial(name, number, isolation="process"))
            if result.status != "complete":
                return f"trial {number}: {result.error}"
            rss.append((result.extra["rss_mb"], "host_recycled_mb" in result.extra))
        return rss
    finally:
        host.stop()


@pytest.fixture(scope="module")
def rss_per_benchmark() -> dict[str, list[tuple[float, bool]] | str]:
    # One host per benchmark, all at once: each trial process is single-threaded and the
    # test process only waits, so this keeps every core busy (the slowest part of the suite).
    with concurrent.futures.ThreadPoolExecutor(len(NAMES)) as pool:
        return dict(zip(NAMES, pool.map(trials_rss, NAMES), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_memory_stays_bounded_over_trials_on_one_worker(
    name: str, rss_per_benchmark: dict[str, list[tuple[float, bool]] | str]
) -> None:
    measured = rss_per_benchmark[name]
    assert not isinstance(measured, str), measured
    shown = f"{name}: RSS (MB, replaced after) {[(round(r), q) for r, q in measured]}"
    # Split into trial processes: a process ends with the trial after which it was replaced.
    processes: list[list[float]] = [[]]
    for rss, replaced in measured:
        processes[-1].append(rss)
        if replaced:
            processes.append([])
    finished = [p for p in processes if p]
    assert len(finished) >= 2, f"never replaced within {TRIALS} trials; {shown}"
    for process in finished:
        start = process[0]
        # Every trial but the one that crossed the limit ran inside it: the host replaced
        # the process at the first trial that grew it past the limit, not later.
        assert all(rss - start <= MEMORY_LIMIT_MB for rss in process[:-1]), shown
    # The ones replaced had crossed it, and each fresh process starts back near the first.
    assert all(p[-1] - p[0] > MEMORY_LIMIT_MB for p in processes[:-1]), shown
    first = finished[0][0]
    assert all(abs(p[0] - first) < MEMORY_LIMIT_MB / 2 for p in finished), shown


JAX_SCRIPT = """
import json, sys
import numpy as np
from supervisor.benchmarks import registry
cls = registry.load(sys.argv[1])
bench = cls(cls.tiny_options)
data = bench.load_data(0)
model = bench.build_model(cls.tiny_params, 0)
metrics = bench.fit(model, data, cls.tiny_params, 1, lambda epoch, m: False)
import keras
print(json.dumps({"backend": keras.config.backend(), "metrics": metrics,
                  "rows": int(np.asarray(bench.predict(model, data.x_val[:3])).shape[0])}))
"""


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_the_jax_backend(name: str) -> None:
    # XLA's backend optimisations triple the compile time of a one-epoch run on CPU.
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_backend_optimization_level=0",
    }
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, name],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and out["rows"] == 3
    assert set(out["metrics"]) == set(registry.load(name).metrics), out
    assert all(math.isfinite(v) for v in out["metrics"].values()), out
