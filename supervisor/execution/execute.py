"""The body of one trial, in the process that trains it: ``execute(spec) -> TrialResult``.

It never raises: a failure is recorded in the result with its cause. Benchmarks and
their data are cached per process, so the data set is generated or read once and
reused by every trial there. Runs in a worker's trial process (``trial_host``), on
each rank of a multi-rank trial (``ranks.run``), or in the worker itself ("inline").
"""

from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.benchmarks import MissingMethod, provides, registry
from supervisor.execution import node, provenance
from supervisor.execution.provenance import node_name
from supervisor.execution.trial import (
    DISK_FULL,
    NON_FINITE,
    EpochHook,
    Trained,
    TrialResult,
    TrialSpec,
    disk_full,
)

if TYPE_CHECKING:
    from supervisor.benchmarks import Benchmark, Checkpoint

LATENCY_SAMPLES = 32  # inputs per timed predict call (Benchmark.latency_inputs)
LATENCY_REPEATS = 3  # timed calls after one warm-up; the fastest counts

_benchmarks: dict[str, Benchmark] = {}
_data: dict[str, Any] = {}


def _cache_key(spec: TrialSpec) -> str:
    return f"{spec.benchmark_target}|{sorted(spec.options.items())!r}"


def worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


class _Report:
    """The ``report`` a benchmark's ``fit`` gets: the epoch hook, carrying the trial's
    epoch checkpoint (``supervisor.benchmarks.base.checkpoint_of``)."""

    def __init__(self, hook: EpochHook, checkpoint: Checkpoint | None) -> None:
        self.hook = hook
        self.checkpoint = checkpoint

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        return self.hook(epoch, metrics)


def _checkpoint(spec: TrialSpec, bench: Benchmark) -> Checkpoint | None:
    if spec.checkpoint_dir is None or spec.checkpoint_every <= 0 or not bench.checkpoints:
        return None
    from supervisor.benchmarks import Checkpoint

    identity = repr((spec.study_name, spec.seed, sorted(spec.params.items())))
    return Checkpoint(spec.checkpoint_dir, spec.checkpoint_every, identity)


def execute(spec: TrialSpec, on_epoch: EpochHook | None = None) -> TrialResult:
    """Run one trial in this process; never raises. ``on_epoch`` hears every epoch and
    may stop the trial there: its result is then "pruned"."""
    result = TrialResult(
        trial_number=spec.trial_number,
        status="failed",
        worker=worker_address(),
        hostname=node_name(),  # the batch system's name: several nodes may share a host
        pid=os.getpid(),
        started=time.time(),
    )
    model = None
    stopped = False
    _reset_peak_rss()
    result.extra["provenance"] = trial_provenance(spec)
    try:
        node.configure(spec.threads)
        key = _cache_key(spec)
        if key not in _benchmarks:
            _benchmarks[key] = registry.load(spec.benchmark_target)(spec.options)
        bench = _benchmarks[key]
        result.keeps_checkpoints = bool(bench.checkpoints)
        data_key = f"{key}|{spec.data_seed}"
        if data_key not in _data:
            _data.clear()  # one data set per worker at a time bounds memory
            t0 = time.perf_counter()
            _data[data_key] = bench.load_data(spec.data_seed)
            result.data_seconds = time.perf_counter() - t0
        data = _data[data_key]

        policy = result.extra["precision"] = node.before_build(spec.node)
        result.extra["provenance"].setdefault("settings", {})["dtype_policy"] = policy
        model = bench.build_model(spec.params, spec.seed)
        node.after_build(model, spec.node)

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            nonlocal stopped
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"report(epoch={epoch!r}): an epoch is an integer >= 0")
            floats = _floats(metrics)
            result.history.append({"epoch": float(epoch), **floats})
            stopped = stopped or (on_epoch is not None and on_epoch(epoch, floats))
            return stopped

        loaded = spec.trained is not None and _load_trained(bench, model, spec.trained, result)
        if spec.trained is not None and not loaded:  # it may hold some of the arrays
            del model
            model = bench.build_model(spec.params, spec.seed)
            node.after_build(model, spec.node)
        if loaded and spec.trained is not None:  # what its trial measured of this model
            metrics = _floats(spec.trained.metrics)
        else:
            checkpoint = _checkpoint(spec, bench)
            t0 = time.perf_counter()
            try:
                report_to = _Report(report, checkpoint)
                fitted = bench.fit(model, data, spec.params, spec.epochs, report_to)
            finally:
                if checkpoint is not None and checkpoint.resumed_from is not None:
                    result.extra["resumed_from_epoch"] = checkpoint.resumed_from
            metrics = _floats(fitted)
            train_seconds = time.perf_counter() - t0
            metrics.update(train_seconds=train_seconds, node_seconds=train_seconds * spec.threads)
        _count_params(bench, model, result, metrics)
        result.metrics = metrics
        if stopped:  # the slot goes to the next trial at once: no latency, no artifacts
            metrics["peak_memory_mb"] = _peak_rss_mb()
            result.status = "pruned"
            return result
        _measure_latency(bench, model, data, result)
        metrics["peak_memory_mb"] = _peak_rss_mb()
        _save_artifacts(bench, model, data, spec, result)
        if spec.save_outputs:
            _save_outputs(bench, model, data, spec, result)
        missing = [m for m in spec.objectives if m not in metrics]
        if missing:
            noted = {"latency_ms": "latency_error", "n_params": "n_params_error"}
            why = result.extra.get(noted.get(missing[0], ""), "")
            raise KeyError(f"benchmark returned no metric {missing[0]!r}{why and f' ({why})'}")
        values = [metrics[m] for m in spec.objectives]
        bad = [
            (m, v) for m, v in zip(spec.objectives, values, strict=True) if not math.isfinite(v)
        ]
        if bad:
            result.failure = "model"
            result.error_type = NON_FINITE
            result.error = f"objective {bad[0][0]} is {bad[0][1]} (diverged training?)"
        else:
            result.values = values
            result.status = "complete"
            if spec.keep_model is not None and spec.keep_model.wanted(values[0], metrics, values):
                _save_model(bench, model, spec, result)
    except Exception as exc:  # a failed trial is data, not a crash of the worker
        result.failure = "model"
        if full := disk_full(exc):  # the run's disk, not the configuration: run again
            result.failure, result.extra[DISK_FULL] = "disk_full", full
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


def trial_provenance(spec: TrialSpec) -> dict[str, Any]:
    """Where the trial runs and what it needs to run again (its seeds, the node settings);
    never raises: a failure to look is recorded instead."""
    try:
        found = provenance.trial_provenance(spec.threads, spec.node.to_dict(), spec.ranks)
    except Exception as exc:
        found = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    found["seed"], found["data_seed"] = spec.seed, spec.data_seed
    # What the model was given: ``supervisor rerun`` trains it again with these, not with
    # a space a later resume changed (benchmark options, epochs, fixed values).
    found["options"], found["epochs"], found["inputs"] = spec.options, spec.epochs, spec.params
    return found


def _count_params(
    bench: Benchmark, model: Any, result: TrialResult, metrics: dict[str, float]
) -> None:
    """``n_params``, left out (and why, noted) where the benchmark cannot count them: an
    optional measurement never fails a trial that trained."""
    try:
        count = bench.count_params(model)
        if count is None:
            raise MissingMethod(type(bench), "count_params")
        metrics["n_params"] = float(count)
    except Exception as exc:
        result.extra["n_params_error"] = f"n_params not measured: {exc}"[:300]


def _measure_latency(bench: Benchmark, model: Any, data: Any, result: TrialResult) -> None:
    """``latency_ms``: milliseconds per sample of ``predict`` on a fixed batch of
    ``LATENCY_SAMPLES`` inputs (``latency_inputs``: by default the first validation
    inputs); one warm-up call (tracing, compilation), then the fastest of
    ``LATENCY_REPEATS`` calls. Left out, noted, for a benchmark without ``predict``."""
    if not provides(type(bench), "predict"):
        result.extra["latency_error"] = "latency not measured: the benchmark has no predict()"
        return
    try:
        batch = bench.latency_inputs(model, data, LATENCY_SAMPLES)
        n = len(batch)
        if n == 0:
            raise ValueError("no inputs to time")
        bench.predict(model, batch)
        best = math.inf
        for _ in range(LATENCY_REPEATS):
            t0 = time.perf_counter()
            bench.predict(model, batch)
            best = min(best, time.perf_counter() - t0)
        result.metrics["latency_ms"] = best / n * 1000.0
    except Exception as exc:  # a benchmark without x_val: the metric is absent, noted
        result.extra["latency_error"] = f"latency not measured: {type(exc).__name__}: {exc}"[:300]


def _save_artifacts(
    bench: Benchmark, model: Any, data: Any, spec: TrialSpec, result: TrialResult
) -> None:
    """Keep the benchmark's per-trial arrays (e.g. a confusion matrix) in the run
    directory. A failure here is noted, not fatal: the trial itself trained fine."""
    if spec.run_dir is None:
        return
    try:
        arrays = bench.artifacts(model, data, spec.params)
        if arrays:
            result.extra["artifacts"] = _save_trial_arrays(spec, rundir.ARTIFACTS_FILE, arrays)
    except Exception as exc:
        result.extra["artifacts_error"] = f"{type(exc).__name__}: {exc}"[:500]
        if full := disk_full(exc):  # kept, and the campaign stops: every trial would lose them
            result.extra[DISK_FULL] = full


def _save_outputs(
    bench: Benchmark, model: Any, data: Any, spec: TrialSpec, result: TrialResult
) -> None:
    """Keep what the trial contributes to a deep ensemble (predictions on the validation
    and test inputs) so that an ensemble reuses it instead of training it again. A
    failure is noted: the trial then counts as having no saved outputs."""
    if spec.run_dir is None:
        return
    try:
        arrays = {k: v for k, v in bench.ensemble_outputs(model, data).items() if v is not None}
        result.extra["outputs"] = _save_trial_arrays(spec, rundir.OUTPUTS_FILE, arrays)
    except Exception as exc:
        result.extra["outputs_error"] = f"{type(exc).__name__}: {exc}"[:500]
        if full := disk_full(exc):
            result.extra[DISK_FULL] = full


def _load_trained(bench: Benchmark, model: Any, trained: Trained, result: TrialResult) -> bool:
    """Give ``model`` the arrays of a model trained already; whether it took them. A file
    gone (trimmed since) or damaged is noted, and the trial trains instead."""
    from supervisor.benchmarks.checkpoint import load_npz

    try:
        bench.load_model_arrays(model, load_npz(trained.path))
    except Exception as exc:
        why = f"{trained.path}: {type(exc).__name__}: {exc}"
        result.extra["from_model_error"] = f"trained instead: {why}"[:500]
        return False
    result.extra["from_model"] = trained.path
    return True


def _save_model(bench: Benchmark, model: Any, spec: TrialSpec, result: TrialResult) -> None:
    """Keep the trained model's arrays (``keep_models``). A failure is noted, not fatal:
    the trial's result stands; its model is then not among those kept."""
    if spec.run_dir is None:
        return
    if spec.trained is not None and "from_model" in result.extra and _link_model(spec, result):
        return
    try:
        arrays = bench.model_arrays(model)
        # Not compressed: trained weights hardly compress, and a large model would cost
        # its trial seconds of deflate.
        result.extra["model"] = _save_trial_arrays(spec, rundir.MODEL_FILE, arrays, compress=False)
    except Exception as exc:
        result.extra["model_error"] = f"model not kept: {type(exc).__name__}: {exc}"[:500]
        if full := disk_full(exc):  # as for its other arrays: the campaign stops
            result.extra[DISK_FULL] = full


def _link_model(spec: TrialSpec, result: TrialResult) -> bool:
    """Keep a loaded kept model (an ensemble member's) as a hard link to the search's file:
    the same arrays, written again, would cost the disk a second copy and the trial the
    write. False where the file system links no file (the arrays are then written)."""
    assert spec.run_dir is not None and spec.trained is not None
    run_dir = Path(spec.run_dir)
    path = rundir.trial_dir(run_dir, spec.trial_number) / rundir.MODEL_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(path) as tmp:
            os.link(spec.trained.path, tmp)
    except OSError:
        return False
    result.extra["model"] = str(path.relative_to(run_dir))
    return True


def _save_trial_arrays(
    spec: TrialSpec, name: str, arrays: dict[str, Any], compress: bool = True
) -> str:
    """Write ``arrays`` to the trial's directory as ``name`` (complete or not at all);
    return the path relative to the run directory."""
    from supervisor.benchmarks.checkpoint import save_npz

    assert spec.run_dir is not None
    run_dir = Path(spec.run_dir)
    path = rundir.trial_dir(run_dir, spec.trial_number) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as tmp:
        save_npz(tmp, arrays, compress)
    return str(path.relative_to(run_dir))


def _reset_peak_rss() -> None:
    """Start this trial's ``peak_memory_mb`` from the current RSS (Linux >= 4.0): the
    trial process outlives its trials, so its lifetime high-water mark would not do."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # then the peak is the process's since it started: an upper bound


def _peak_rss_mb() -> float:
    """RSS high-water mark of this process (VmHWM) in MiB, or ru_maxrss where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics as floats; a bool or text is refused, though ``float`` takes it (True
    would be a loss of 1.0)."""
    for name, value in metrics.items():
        if isinstance(value, bool | str | bytes):
            raise TypeError(f"metric {name!r} is {value!r}; metrics are numbers")
    return {str(k): float(v) for k, v in metrics.items()}
