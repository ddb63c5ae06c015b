"""The worker side of a trial: ``run_trial(spec) -> TrialResult``. It never raises.

Runs inside a Dask worker process. Benchmarks and their data are cached per process, so
the data set is generated or read once per worker and reused by every trial there.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any

from supervisor import node, registry
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

        model = bench.build_model(spec.params, spec.seed)

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            result.history.append({"epoch": float(epoch), **_floats(metrics)})
            return False

        t0 = time.perf_counter()
        metrics = _floats(bench.fit(model, data, spec.params, spec.epochs, report))
        train_seconds = time.perf_counter() - t0
        metrics.update(
            train_seconds=train_seconds,
            node_seconds=train_seconds * spec.threads,
            n_params=float(model.count_params()),
        )
        result.metrics = metrics
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


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in metrics.items()}
