"""``supervisor status``: a terminal table read from storage, safe beside a running search.

It only reads the study (a journal file is append-only and read without a lock; a
database is read in its own transactions), so any number of shells can watch a campaign
while its driver writes. The ETA divides the trials left in the budget by the recent
throughput: the last ``RECENT`` finished trials over the time since the finish before
them, so a stalled campaign shows a growing ETA rather than a stale one; only the finishes
since the running drivers' first trial count (a resumed campaign's new session). A
timeout (``budget.timeout``, each driver's from its start) bounds the ETA: at it the
drivers start no new trial, however many the budget has left. A last
line says what the campaign cost in node-hours (and GPU-hours) per outcome
(``supervisor.report.cost``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals
from supervisor.report import fmt
from supervisor.report.cost import Cost, campaign_cost
from supervisor.report.fmt import seconds as duration_text
from supervisor.study import attrs, deadline, feasibility, stop_request
from supervisor.study.kept_models import kept_in
from supervisor.study.records import RecordCache, TrialRecord
from supervisor.study.recovery import orphaned
from supervisor.study.stopping import stopped_early

if TYPE_CHECKING:
    from pathlib import Path

    import optuna
    from rich.console import Console

RECENT = 20  # finished trials that set the throughput
RUNNING_SHOWN = 50
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass(frozen=True)
class Running:
    number: int
    worker: str  # "" until the driver has recorded it
    elapsed: float  # seconds since the trial started (or was handed to Dask)
    orphaned: bool = False  # its driver is gone: nobody will finish it


@dataclass
class Status:
    study: str
    states: dict[str, int]
    failures: dict[str, int]  # failure kind -> failed trials
    requested: int | None  # the budget, when the study holds the campaign's configuration
    done: int  # trials that count toward the budget
    objectives: list[str]
    warm: int = 0  # complete trials told by warm start (among states["COMPLETE"])
    infeasible: int = 0  # complete trials that break the constraints (never the best)
    best_number: int | None = None
    best_values: list[float] = field(default_factory=list)
    best_params: dict[str, Any] = field(default_factory=dict)
    best_origin: str = ""  # where the best was trained when not in this campaign
    pareto_size: int = 0
    running: list[Running] = field(default_factory=list)
    per_hour: float | None = None  # recent throughput
    last_finish_ago: float | None = None
    timeout_in: float | None = None  # until the running drivers' timeout stops new trials
    timed_out: bool = False  # nothing runs: the last session ended at its timeout
    cost: Cost | None = None  # allocation units used so far, per outcome
    stopped: str | None = None  # why budget.target or patience ended it (study.stopping)
    stop_requested: str | None = None  # a `supervisor stop` not withdrawn since
    # keep_models: complete trials whose workers could not save their models -> why
    model_errors: dict[int, str] = field(default_factory=dict)

    @property
    def left(self) -> int | None:
        if self.requested is None:
            return None
        done = self.stopped or self.stop_requested  # the submit chain ends too
        return 0 if done else max(0, self.requested - self.done)

    @property
    def active(self) -> list[Running]:
        """Running trials that a live driver will finish."""
        return [r for r in self.running if not r.orphaned]

    @property
    def at_pace(self) -> float | None:
        """Seconds the trials left take at the recent throughput, while it runs."""
        if not self.left or not self.active or not self.per_hour:
            return None
        return self.left / self.per_hour * 3600.0

    @property
    def eta(self) -> float | None:
        """Seconds until the campaign ends: the trials left at the recent throughput, or
        the drivers' timeout where it comes first (``by_timeout``; its running trials
        finish after it)."""
        if self.by_timeout:
            return self.timeout_in
        return self.at_pace

    @property
    def by_timeout(self) -> bool:
        """The timeout ends the campaign before its budget at the recent throughput."""
        pace, timeout = self.at_pace, self.timeout_in
        return pace is not None and timeout is not None and timeout < pace


def read_status(
    study: optuna.Study, now: float | None = None, cache: RecordCache | None = None
) -> Status:
    """``cache``: the records of an earlier look at ``study`` (``status --watch``)."""
    from optuna.trial import TrialState

    now = time.time() if now is None else now
    trials = study.get_trials(deepcopy=False)
    records = (cache or RecordCache()).records(trials)
    counted = [attrs.counts_toward_budget(t) for t in trials]  # once: the done and the pace
    config = study.user_attrs.get(attrs.CONFIG) or {}
    budget = config.get("budget") if isinstance(config, dict) else None
    requested = budget.get("trials") if isinstance(budget, dict) else None
    names = study.user_attrs.get(attrs.OBJECTIVES)
    if not (isinstance(names, list) and len(names) == len(study.directions)):
        names = [f"objective {i}" for i in range(len(study.directions))]
    status = Status(
        study=study.study_name,
        states=dict(Counter(t.state.name for t in trials)),
        failures=dict(
            Counter(
                "warm start" if r.warm_start else r.failure or "model"
                for r in records
                if r.state == TrialState.FAIL
            )
        ),
        warm=sum(1 for r in records if r.warm_start and r.state == TrialState.COMPLETE),
        requested=requested if isinstance(requested, int) else None,
        done=sum(counted),
        objectives=[str(n) for n in names],
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    status.model_errors = {
        r.number: r.model_error for r in records if r.model_error and r.state.name == "COMPLETE"
    }
    kept = [t for t in complete if feasibility.feasible(t)]
    status.infeasible = len(complete) - len(kept)
    if kept and len(study.directions) == 1:
        best = study.best_trial  # Optuna's: of the trials that keep the constraints
        status.best_number, status.best_values = best.number, list(best.values)
        status.best_params = dict(best.params)
        status.best_origin = next((_origin(r) for r in records if r.number == best.number), "")
    elif kept:
        status.pareto_size = len(internals.pareto_front(trials, study.directions))
    if isinstance(budget, dict):
        directions = [d.name.lower() for d in study.directions]
        status.stopped = stopped_early(budget, list(zip(names, directions, strict=True)), trials)
    if (request := stop_request.read(study)) is not None:
        status.stop_requested = request.line()
    lost = orphaned(study.user_attrs, trials, now)
    for r in records:
        if r.state == TrialState.RUNNING:
            started = r.started
            if started is None and r.datetime_start is not None:
                started = r.datetime_start.timestamp()
            elapsed = now - started if started is not None else 0.0
            status.running.append(Running(r.number, r.where, max(0.0, elapsed), r.number in lost))
    live = {
        r.driver
        for r in records
        if r.state == TrialState.RUNNING and r.number not in lost and r.driver is not None
    }
    _throughput(status, counted, records, now, live)
    if (ends := deadline.ends(study.user_attrs, live)) is not None:
        status.timeout_in = max(0.0, ends - now)
    if not live:
        last: dict[str, float] = {}
        for r in records:
            if r.driver is not None and (end := fmt.end_time(r)) is not None:
                last[r.driver] = max(end, last.get(r.driver, end))
        status.timed_out = deadline.timed_out(study.user_attrs, last)
    status.cost = campaign_cost(records, now, lost)
    return status


def _origin(record: TrialRecord) -> str:
    """Where a trial not trained in this campaign was: the best of a campaign can be a
    warm-start trial or a twin told another's result, which no model was kept of."""
    if record.warm_start:
        return f"warm start: trained in {record.warm_start}, not in this campaign"
    if record.duplicate_of is not None:
        return f"the result of its twin, trial {record.duplicate_of}"
    return ""


def _throughput(
    status: Status, counted: list[bool], records: list[TrialRecord], now: float, live: set[str]
) -> None:
    """``live``: the drivers running trials now. Only their session counts: a resumed
    campaign (a `submit` chain's next job, hours later) is not as slow as the finishes
    of the last session and the pause since make it look. Times are the workers' Unix
    times where recorded: Optuna's dates are the driver's local time without a zone, read
    hours off by a shell in another zone (a laptop, TZ set) or across a change of DST."""
    finishes = sorted(
        end
        for counts, r in zip(counted, records, strict=True)
        if counts and (end := fmt.end_time(r)) is not None
    )
    if not finishes:
        return
    status.last_finish_ago = max(0.0, now - finishes[-1])
    session = [r for r in records if not live or r.driver in live]
    # Dates only where no trial has a worker's time yet: one trial queued, read 5 h early,
    # would have begun the session.
    starts = [r.started for r in session if r.started] or [
        r.datetime_start.timestamp() for r in session if r.datetime_start is not None
    ]
    if live and starts:  # this session began with its drivers' first trial
        first = min(starts)  # once: per finish, it was 180 s of CPU at 100,000 trials
        finishes = [f for f in finishes if f >= first]
    recent = finishes[-RECENT:]
    if not recent:
        return  # none finished in this session yet
    if len(finishes) > len(recent):
        since = finishes[-len(recent) - 1]
    else:
        since = min(starts, default=recent[0])
    # With nothing running the pace is that of the campaign's last stretch: over the time
    # since, it fell by the hour ("budget reached; 0.3 trials/h recently" the next day).
    end = now if status.active else finishes[-1]
    if end > since:
        status.per_hour = len(recent) / (end - since) * 3600.0


def print_status(
    study: optuna.Study,
    console: Console | None = None,
    now: float | None = None,
    run_dir: Path | None = None,
    cache: RecordCache | None = None,
) -> Status:
    """Print the status table of ``study`` (with ``run_dir``: the trained models it
    keeps too; ``cache``: an earlier look's records); returns what it printed."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    status = read_status(study, now, cache)
    console = console or Console()
    budget = f"{status.done} of {status.requested}" if status.requested else f"{status.done}"
    console.print(f"[bold]{status.study}[/bold]  finished {budget}", highlight=False)
    counts = Table("state", "trials")
    for state in STATES:
        counts.add_row(state, str(status.states.get(state, 0)))
    if status.warm:
        counts.add_row("  COMPLETE (warm start)", str(status.warm))
    if status.infeasible:
        counts.add_row("  COMPLETE (breaks the constraints)", str(status.infeasible))
    for kind, n in sorted(status.failures.items()):
        counts.add_row(f"  FAIL ({kind})", str(n))
    console.print(counts)
    if status.best_number is not None:
        values = ", ".join(
            f"{name} {value:.6g}"
            for name, value in zip(status.objectives, status.best_values, strict=False)
        )
        params = ", ".join(f"{k}={v!r}" for k, v in status.best_params.items())
        origin = f" ({status.best_origin})" if status.best_origin else ""
        console.print(f"best: trial {status.best_number}{origin}  {values}", markup=False)
        console.print(f"      {params}", markup=False, highlight=False)
    elif status.pareto_size:
        console.print(f"Pareto front: {status.pareto_size} trials", highlight=False)
    elif status.infeasible:
        console.print("best: none yet (every complete trial breaks the constraints)")
    kept = kept_in(study, run_dir) if run_dir is not None else []
    if kept and run_dir is not None:
        shown = ", ".join(map(str, kept[:10])) + (", …" if len(kept) > 10 else "")
        where = run_dir / "trials"  # a path is never wrapped: it is copied from here
        console.print(f"models kept: trials {shown} (in {where})", markup=False, soft_wrap=True)
    if status.model_errors:  # a full disk: the user learns it before wanting the model
        last = max(status.model_errors)
        console.print(
            f"models not saved: {len(status.model_errors)} trial(s); trial {last}:"
            f" {status.model_errors[last]}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if status.running:
        table = Table("running trial", "worker", "elapsed")
        longest = sorted(status.running, key=lambda r: -r.elapsed)
        for r in longest[:RUNNING_SHOWN]:
            elapsed = duration_text(r.elapsed) + (" (driver gone)" if r.orphaned else "")
            # Text, not markup: an IPv6 worker, tcp://[fd00::5]:40000, lost its host as a tag.
            table.add_row(str(r.number), Text(r.worker or "(not reported yet)"), elapsed)
        if len(longest) > RUNNING_SHOWN:
            table.add_row("…", f"{len(longest) - RUNNING_SHOWN} more", "")
        console.print(table)
    console.print(_progress_line(status), markup=False, highlight=False)
    if status.cost is not None and status.cost.usage:
        console.print(status.cost.line(), markup=False, highlight=False)
    return status


def _progress_line(status: Status) -> str:
    if status.per_hour:
        rate = f"{status.per_hour:.1f} trials/h recently"
    else:
        rate = "throughput unknown" if status.last_finish_ago is not None else "no trial finished"
    if status.stopped:
        return f"stopped early: {status.stopped}; {rate}"
    if status.stop_requested:
        return f"stop requested ({status.stop_requested}); {rate}"
    if status.left == 0:
        return f"budget reached; {rate}"
    if not status.active:
        ago = status.last_finish_ago
        last = f"; last trial finished {duration_text(ago)} ago" if ago is not None else ""
        if status.running:
            return (
                f"not running: the driver of the {len(status.running)} RUNNING trials is gone"
                f" (the next `supervisor search` re-queues them){last}"
            )
        if status.timed_out:  # else the user could not tell it from a crash
            left = f" with {status.left} trials left" if status.left else ""
            return (
                f"not running: its last session stopped at its timeout (budget.timeout){left};"
                f" `supervisor search` continues it{last}"
            )
        return f"not running (no RUNNING trial){last}"
    if status.timeout_in == 0:
        return f"timeout reached: no new trials, the {len(status.active)} running finish; {rate}"
    timeout = ""
    if status.timeout_in is not None:
        timeout = f"; the timeout stops new trials in {duration_text(status.timeout_in)}"
    if status.eta is None or status.at_pace is None:  # (None together)
        return f"{rate}; ETA unknown until trials finish{timeout}"
    if status.by_timeout:  # a 5 h ETA for a campaign its timeout ends in 20 min misled
        return (
            f"ETA {duration_text(status.eta)}: the timeout stops new trials then (running"
            f" ones finish); the {status.left} trials left would take"
            f" {duration_text(status.at_pace)} at {rate}"
        )
    return f"ETA {duration_text(status.eta)} for {status.left} trials at {rate}{timeout}"
