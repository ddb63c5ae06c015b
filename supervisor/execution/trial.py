"""What travels between the driver and the workers: one spec out, one result back.

Both are plain picklable dataclasses; workers never see the Optuna study.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from supervisor.execution.node import NodeSettings

# "pruned": the driver's pruner stopped it at an epoch boundary (see supervisor.execution.channel).
# Hears each epoch of a running trial (epoch from 0, metrics); True stops the trial there.
EpochHook = Callable[[int, dict[str, float]], bool]

Status = Literal["complete", "failed", "pruned"]

# Why a trial failed. "model": the trial itself is at fault (exception, NaN/inf loss);
# its parameters are bad data. "infrastructure": the worker, node or driver went away;
# the same parameters are run again and the failure does not count against the budget.
# "disk_full": it could not write (a checkpoint, its arrays): the run directory's file
# system is full or over quota; run again once there is space, the campaign stops.
FailureKind = Literal["model", "infrastructure", "interrupted", "disk_full"]
# Error types of model failures: the objective came out NaN or inf (diverged); the trial
# ran over the time limit or the worker's memory limit; its worker died on every attempt.
NON_FINITE = "NonFiniteObjective"
TIME_LIMIT = "TimeLimitExceeded"
MEMORY_LIMIT = "MemoryLimitExceeded"
DIED_REPEATEDLY = "WorkerDiedRepeatedly"
# ``TrialResult.extra`` key: the error of a write that found the disk full (quota).
DISK_FULL = "disk_full"


def disk_full(exc: BaseException) -> str | None:
    """``exc``'s line when it (or what it was raised from) is a write that found no space
    (ENOSPC) or the user's quota reached (EDQUOT): no configuration's fault."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{type(seen).__name__}: {seen}"[:500]
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class KeepModel:
    """Keep the trained model (``keep_models``) of a complete trial whose first objective
    is at least as good as ``bar``: the worst of the models kept when the trial was sent
    (None: fewer were kept than wanted, so any). The driver removes the surplus."""

    bar: float | None = None
    maximize: bool = False
    # The space file's constraints, (metric, min, max): the model of a trial that breaks
    # one is never kept, so it is not written (the most accurate models often break a
    # bound on size or latency: each was written, then removed).
    bounds: tuple[tuple[str, float | None, float | None], ...] = ()
    # Several objectives (kept by Pareto rank, no single bar): the K models kept when the
    # trial was sent, each objective times its ``signs`` (lower is better). A trial that
    # every one of them dominates is never among the K best, whatever comes later (the
    # kept ones are only replaced by better): its model is not written. Before, every
    # complete trial wrote its model and the driver removed it at once.
    kept: tuple[tuple[float, ...], ...] = ()
    signs: tuple[float, ...] = ()

    def wanted(
        self,
        value: float,
        metrics: Mapping[str, float] | None = None,
        values: Sequence[float] = (),
    ) -> bool:
        """``value``: the first objective's; ``values``: every objective's."""
        if not self.keeps(metrics or {}):
            return False
        if self.kept and len(values) == len(self.signs):
            loss = [s * v for s, v in zip(self.signs, values, strict=True)]
            return not all(dominates(other, loss) for other in self.kept)
        if self.bar is None:
            return True
        return value >= self.bar if self.maximize else value <= self.bar

    def keeps(self, metrics: Mapping[str, float]) -> bool:
        """Whether ``metrics`` keep every bound, as ``Constraint.violation`` judges: a
        metric not measured, or not finite, breaks its bound."""
        for metric, low, high in self.bounds:
            value = metrics.get(metric)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if not math.isfinite(value):
                return False
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return True


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one (lower is better)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


@dataclass(frozen=True)
class Trained:
    """A model trained already (a search trial's kept model, ``keep_models``) that a trial
    of the same configuration and seed loads instead of training: an ensemble member
    reuses it. ``metrics``: what its trial measured, the member's own."""

    path: str  # the model file (``rundir.MODEL_FILE``), absolute
    metrics: dict[str, float]


@dataclass(frozen=True)
class TrialSpec:
    study_name: str
    trial_number: int
    params: dict[str, Any]
    benchmark: str
    benchmark_target: str  # "module:attr" of the Benchmark class
    options: dict[str, Any]
    epochs: int
    seed: int
    data_seed: int
    objectives: tuple[str, ...]
    threads: int = 1
    # MPI ranks of a data-parallel trial (the space file's `ranks`; supervisor.execution.ranks).
    ranks: int = 1
    run_dir: str | None = None
    node: NodeSettings = field(default_factory=NodeSettings)
    time_limit: float | None = None  # seconds; the trial is killed after it
    # "process": in the worker's long-lived trial process (killable, memory bounded);
    # "inline": in the calling process (tests, debugging).
    isolation: Literal["process", "inline"] = "process"
    # Dask event topic of the driver that streams this trial's start and epochs (None: the
    # trial runs unobserved, e.g. in tests), and how long each epoch waits for the
    # driver's continue/prune verdict (0: the driver prunes nothing, do not wait).
    events_topic: str | None = None
    verdict_timeout: float = 0.0
    # Where the trial saves its epoch checkpoints and resumes from them (None: it does
    # not), and every how many epochs (supervisor.benchmarks.base.Checkpoint).
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    # Keep the trial's ensemble outputs (``Benchmark.ensemble_outputs``) in its trial
    # directory: the campaign builds deep ensembles from the search population.
    save_outputs: bool = False
    # Save the trained model's arrays (``Benchmark.model_arrays``) in its trial directory
    # when it completes and beats the bar (None: never).
    keep_model: KeepModel | None = None
    # Load this model instead of training (when it loads; else the trial trains).
    trained: Trained | None = None


@dataclass
class TrialResult:
    trial_number: int
    status: Status
    values: list[float] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    failure: FailureKind | None = None
    worker: str | None = None
    hostname: str | None = None
    pid: int | None = None
    started: float = 0.0
    finished: float = 0.0
    data_seconds: float = 0.0
    # Whether the trial's benchmark saves epoch checkpoints (None: it never loaded). A
    # campaign whose benchmark keeps none has no checkpoint directory to clean up.
    keeps_checkpoints: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.finished - self.started


def model_failure(spec: TrialSpec, started: float, kind: str, message: str) -> TrialResult:
    """The result of a trial that was stopped or refused for a reason of its own (a time
    or memory limit, bad ranks): a model failure of type ``kind``, ending now."""
    return TrialResult(
        trial_number=spec.trial_number,
        status="failed",
        failure="model",
        error_type=kind,
        error=message[:2000],
        started=started,
        finished=time.time(),
    )
