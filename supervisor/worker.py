"""The worker side of a trial: ``run_trial(spec) -> TrialResult``. It never raises.

``run_trial`` runs inside a Dask worker and hands the trial to the worker's trial
process, where ``execute`` does the work. Benchmarks and their data are cached per
process, so the data set is generated or read once and reused by every trial there.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import node, registry, rundir
from supervisor.trial import TrialResult, TrialSpec

if TYPE_CHECKING:
    from benchmarks_sci.base import Benchmark

_benchmarks: dict[str, Benchmark] = {}
_data: dict[str, Any] = {}


def _cache_key(spec: TrialSpec) -> str:
    return f"{spec.benchmark_target}|{sorted(spec.options.items())!r}"


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def run_trial(spec: TrialSpec) -> TrialResult:
    """The task the driver submits: run ``spec`` in this worker's trial process (see
    ``supervisor.trial_host``), or here when ``spec.isolation`` is "inline"."""
    if spec.isolation == "inline":
        return execute(spec)
    from supervisor.trial_host import host

    result = host().run(spec, memory_limit_mb=_worker_memory_limit_mb())
    result.worker = result.worker or _worker_address()
    return result


def _worker_memory_limit_mb() -> float | None:
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return limit / 2**20 if limit else None


def execute(spec: TrialSpec) -> TrialResult:
    """Run one trial in this process; never raises."""
    result = TrialResult(
        trial_number=spec.trial_number,
        status="failed",
        worker=_worker_address(),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        started=time.time(),
    )
    model = None
    try:
        node.configure(spec.threads)
        key = _cache_key(spec)
        if key not in _benchmarks:
            _benchmarks[key] = registry.load(spec.benchmark_target)(spec.options)
        bench = _benchmarks[key]
        data_key = f"{key}|{spec.data_seed}"
        if data_key not in _data:
            _data.clear()  # one data set per worker at a time bounds memory
            t0 = time.perf_counter()
            _data[data_key] = bench.load_data(spec.data_seed)
            result.data_seconds = time.perf_counter() - t0
        data = _data[data_key]

        result.extra["precision"] = node.before_build(spec.node)
        model = bench.build_model(spec.params, spec.seed)
        node.after_build(model, spec.node)

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            result.history.append({"epoch": float(epoch), **_floats(metrics)})
            return False

        t0 = time.perf_counter()
        metrics = _floats(bench.fit(model, data, spec.params, spec.epochs, report))
        train_seconds = time.perf_counter() - t0
        metrics.update(
            train_seconds=train_seconds,
            node_seconds=train_seconds * spec.threads,
            n_params=float(bench.count_params(model)),
        )
        result.metrics = metrics
        _save_artifacts(bench, model, data, spec, result)
        missing = [m for m in spec.objectives if m not in metrics]
        if missing:
            raise KeyError(f"benchmark returned no metric {missing[0]!r}")
        values = [metrics[m] for m in spec.objectives]
        bad = [
            (m, v) for m, v in zip(spec.objectives, values, strict=True) if not math.isfinite(v)
        ]
        if bad:
            result.failure = "model"
            result.error_type = "NonFiniteObjective"
            result.error = f"objective {bad[0][0]} is {bad[0][1]} (diverged training?)"
        else:
            result.values = values
            result.status = "complete"
    except Exception as exc:  # a failed trial is data, not a crash of the worker
        result.failure = "model"
        result.error_type = type(exc).__name__
        result.error = str(exc)[:2000] or type(exc).__name__
        result.traceback = traceback.format_exc()[-8000:]
    finally:
        del model
        try:
            node.release_model_memory()
            # TF keeps ~5 MB per built model even after clear_session (TF 2.21); the
            # nanny restarts a worker that reaches its memory limit. Recorded to watch it.
            result.extra["rss_mb"] = node.rss_mb()
        except Exception as exc:  # never let clean-up turn a result into a Dask error
            result.extra["cleanup_error"] = repr(exc)
        result.finished = time.time()
    return result


def _save_artifacts(
    bench: Benchmark, model: Any, data: Any, spec: TrialSpec, result: TrialResult
) -> None:
    """Keep the benchmark's per-trial arrays (e.g. a confusion matrix) in the run
    directory. A failure here is noted, not fatal: the trial itself trained fine."""
    if spec.run_dir is None:
        return
    try:
        arrays = bench.artifacts(model, data, spec.params)
        if not arrays:
            return
        import numpy as np

        run_dir = Path(spec.run_dir)
        path = rundir.trial_dir(run_dir, spec.trial_number) / rundir.ARTIFACTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()}
        )
        os.replace(tmp, path)
        result.extra["artifacts"] = str(path.relative_to(run_dir))
    except Exception as exc:
        result.extra["artifacts_error"] = f"{type(exc).__name__}: {exc}"[:500]


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in metrics.items()}
