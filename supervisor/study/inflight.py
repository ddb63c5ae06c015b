"""The trials one driver has handed to Dask, and what their stream says while they run.

Workers stream each trial's start and epochs to the driver (``supervisor.execution.channel``).
The start (worker, host, time) is stored for ``supervisor status`` once the trial has run
``START_RECORD_DELAY`` seconds: a short trial's result carries the same, and then costs one
storage write instead of two. Each epoch's first objective becomes an intermediate value
(a learning-curve point) and, when the study prunes, the pruner's verdict goes back to the
trial's worker at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.study.storage import batch, set_user_attrs

if TYPE_CHECKING:
    import optuna
    from distributed import Future

    from supervisor.execution import channel
    from supervisor.study.index import ParamKey

START_RECORD_DELAY = 1.0
# Dask starts a trial again on another worker when its worker retires at its lifetime
# while it runs (a worker that dies fails the task instead). A trial started again this
# many times with no new epoch since its last start outlives every worker of the campaign:
# it restarted from scratch job after job, for days, and nothing said so. It ends as a
# model failure (fail fast stops a campaign whose every trial is too long).
MAX_STALLED_STARTS = 3
OUTLIVED = (
    "OutlivesItsWorkers",
    "started again on another worker, with no new epoch since, each time its worker"
    " retired at its lifetime (before the batch job's walltime) while it ran: it runs longer"
    " than a worker lives; give the launcher profile a longer walltime, or let the"
    " benchmark save epoch checkpoints (budget.checkpoint_every) to resume from",
)


@dataclass
class Running:
    """A trial handed to Dask, and what the stream told about it so far."""

    trial: optuna.Trial
    key: ParamKey
    worker: str | None = None  # set by its start message: it has started
    reported: set[int] = field(default_factory=set)  # epochs reported to the study
    pruned_at: int | None = None  # epoch at which the pruner said stop
    twins: list[optuna.Trial] = field(default_factory=list)  # duplicates waiting on it
    unrecorded: dict[str, Any] = field(default_factory=dict)  # its start, not yet stored
    started_at: float = 0.0  # monotonic time the start arrived
    starts: int = 0  # start messages: more than one when Dask ran it again (a retirement)
    last_epoch: int = -1  # the latest epoch streamed
    progress: int = -1  # the latest epoch streamed before its last start
    stalled: int = 0  # starts in a row with no new epoch since the one before


class InFlight:
    def __init__(self, study: optuna.Study, metric: str | None, prunes: bool) -> None:
        """``metric``: the objective reported per epoch (None: several objectives, whose
        intermediate values Optuna does not keep); ``prunes``: the study's pruner judges."""
        self.study, self.metric, self.prunes = study, metric, prunes
        self.futures: dict[Future, Running] = {}
        self.by_number: dict[int, Running] = {}
        self.by_key: dict[ParamKey, Running] = {}  # the first in flight per configuration
        self.unrecorded: dict[int, Running] = {}  # starts not stored yet, oldest first
        self.channel: channel.DriverChannel | None = None  # where verdicts go

    def __len__(self) -> int:
        return len(self.futures)

    def add(self, future: Future, trial: optuna.Trial, key: ParamKey) -> None:
        run = Running(trial, key)
        self.futures[future] = run
        self.by_number[trial.number] = run
        self.by_key.setdefault(key, run)

    def forget(self, future: Future, started_known: bool = False) -> Running:
        """The trial of ``future`` leaves the flight (its start is stored now unless its
        result carries it, ``started_known``)."""
        run = self.futures.pop(future)
        if run.unrecorded and not started_known:  # where it was when it failed
            set_user_attrs(run.trial, run.unrecorded)
        run.unrecorded = {}
        self.unrecorded.pop(run.trial.number, None)
        self.by_number.pop(run.trial.number, None)
        if self.by_key.get(run.key) is run:
            del self.by_key[run.key]
        return run

    def on_event(self, msg: Any) -> None:
        if not isinstance(msg, dict) or msg.get("study") != self.study.study_name:
            return
        run = self.by_number.get(msg.get("trial"))  # type: ignore[arg-type]
        if run is None:  # finished already, or another driver's
            return
        if msg.get("kind") == "started":  # `supervisor status` shows where it runs
            run.starts += 1
            if run.starts > 1:
                self._started_again(run)
            run.worker = msg.get("worker")
            seen = {
                "worker": run.worker,
                "hostname": msg.get("hostname"),
                "started": msg.get("time"),
            }
            run.unrecorded = {k: v for k, v in seen.items() if v is not None}
            # Its age when the message left (workers announce longer trials late).
            began = msg.get("time")
            age = time.time() - began if isinstance(began, int | float) else 0.0
            run.started_at = time.monotonic() - min(START_RECORD_DELAY, max(0.0, age))
            self.unrecorded.pop(run.trial.number, None)  # a repeated start goes last
            self.unrecorded[run.trial.number] = run
        elif msg.get("kind") == "epoch" and isinstance(msg.get("metrics"), dict):
            run.last_epoch = max(run.last_epoch, int(msg["epoch"]))
            self._on_epoch(run, int(msg["epoch"]), msg["metrics"])

    def _started_again(self, run: Running) -> None:
        """Its worker retired while it ran: the trial ends (``OUTLIVED``) once it has
        started ``MAX_STALLED_STARTS`` times in a row without a new epoch."""
        run.stalled = run.stalled + 1 if run.last_epoch <= run.progress else 0
        run.progress = run.last_epoch
        if run.stalled < MAX_STALLED_STARTS or self.channel is None:
            return
        from supervisor.execution.worker import cancel_trials
        from supervisor.study.placement import tell_workers

        # Its new worker kills it at once, and its task returns the model failure.
        numbers = [run.trial.number]
        tell_workers(self.channel.client, cancel_trials, self.study.study_name, numbers, OUTLIVED)

    def _on_epoch(self, run: Running, epoch: int, metrics: dict[str, Any]) -> None:
        self.report(run, epoch, metrics)
        if not self.prunes:
            return
        if run.pruned_at is None and run.trial.should_prune():
            run.pruned_at = epoch
        if self.channel is not None:
            verdict = (self.study.study_name, run.trial.number, epoch, run.pruned_at is not None)
            self.channel.send_verdict(run.worker, verdict)

    def report(self, run: Running, epoch: int, metrics: dict[str, Any]) -> None:
        """The first objective at ``epoch`` becomes an intermediate value (a learning curve
        point, and what the pruner judges)."""
        value = metrics.get(self.metric) if self.metric is not None else None
        if epoch in run.reported or epoch < 0 or not isinstance(value, int | float):
            return
        if isinstance(value, bool):
            return
        run.trial.report(float(value), step=epoch)
        run.reported.add(epoch)

    def record_starts(self) -> None:
        """Store the starts that arrived ``START_RECORD_DELAY`` seconds ago or earlier."""
        before = time.monotonic() - START_RECORD_DELAY
        with batch(self.study):
            while self.unrecorded:
                number, run = next(iter(self.unrecorded.items()))
                if run.started_at > before:
                    return
                del self.unrecorded[number]
                set_user_attrs(run.trial, run.unrecorded)
                run.unrecorded = {}
