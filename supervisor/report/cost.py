"""What a campaign cost in allocation units: node-hours, core-hours and GPU-hours per outcome.

From the trials themselves: each trial's time on its worker x what it held, from its
provenance (``supervisor.execution.provenance``): its cores (threads x ranks) over the
cores of its node (the launcher profile's cores per job, one node's worth in
dask-jobqueue's model, or the machine's for a local run), and its GPUs. A trial without
provenance (an older study, or one whose worker died under it) is taken to hold what the
others held. Outcomes: complete, pruned, failed by the model, wasted by the infrastructure
(its worker died or it was interrupted: its parameters ran again), running (so far), and
the workers' idle time between two of their trials, which is all of their idle time that
the trials show: a worker's start-up, its wait for a first trial and its idle end before
it retired leave no trace in the study. Slurm's accounting (``sacct``) is not consulted:
this is what the trials used, not what the jobs were charged.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from supervisor.study.records import TrialRecord

COMPLETE, PRUNED, FAILED, WASTED, RUNNING, IDLE = (
    "complete",
    "pruned",
    "failed (model)",
    "wasted (infrastructure)",
    "running",
    "idle between trials",
)
OUTCOMES = (COMPLETE, PRUNED, FAILED, WASTED, RUNNING, IDLE)
WASTED_FAILURES = ("infrastructure", "interrupted")


@dataclass
class Usage:
    trials: int = 0
    seconds: float = 0.0  # on workers
    core_seconds: float = 0.0
    node_seconds: float = 0.0
    gpu_seconds: float = 0.0

    def add(self, seconds: float, cores: float, node_cores: float | None, gpus: float) -> None:
        self.seconds += seconds
        self.core_seconds += seconds * cores
        self.node_seconds += seconds * cores / node_cores if node_cores else 0.0
        self.gpu_seconds += seconds * gpus


@dataclass
class Cost:
    usage: dict[str, Usage] = field(default_factory=dict)  # outcome -> what it used
    with_provenance: int = 0  # trials that ran and recorded what they held
    without_provenance: int = 0  # trials that ran, taken to hold what the others held
    node_known: bool = True  # False: no trial knew its node's size; no node-hours

    def total(self, unit: str) -> float:
        """Seconds of ``unit`` ("core", "node", "gpu") used by all outcomes."""
        return sum(getattr(u, f"{unit}_seconds") for u in self.usage.values())

    @property
    def unit(self) -> str:
        """The allocation unit to show: node-hours, or core-hours without node sizes."""
        return "node" if self.node_known else "core"

    def line(self) -> str:
        """One line for ``supervisor status``."""
        unit = self.unit
        hours = self.total(unit) / 3600
        parts = [
            f"{name.split(' (')[0]} {getattr(self.usage[name], f'{unit}_seconds') / 3600:.3g}"
            for name in OUTCOMES
            if name in self.usage and name != IDLE
        ]
        text = f"cost: {hours:.3g} {unit}-hours ({', '.join(parts)})"
        if IDLE in self.usage:
            idle = getattr(self.usage[IDLE], f"{unit}_seconds") / 3600
            text += f" of which {idle:.3g} idle between trials"
        gpu = self.total("gpu") / 3600
        if gpu:
            text += f"; {gpu:.3g} GPU-hours"
        return text + "; from the trials' own times (not sacct)"


def outcome(record: TrialRecord) -> str | None:
    """The cost row of a trial; None for one that never used a worker (a duplicate told
    its twin's values, a warm start, a surplus trial, one still waiting)."""
    state = record.state.name
    if state == "COMPLETE":
        return None if record.duplicate_of is not None or record.warm_start else COMPLETE
    if state == "PRUNED":
        return PRUNED
    if state == "RUNNING":
        return RUNNING
    if state == "FAIL":
        if record.warm_start:
            return None
        if record.failure in WASTED_FAILURES:
            return WASTED
        return FAILED if record.failure in (None, "model") else None
    return None


def seconds_used(record: TrialRecord, now: float) -> float:
    """Seconds it held its worker: its measured duration, else from its start on a worker
    to its end (or now); 0 when it never started there."""
    if record.duration is not None:
        return record.duration
    if record.started is None:
        return 0.0
    end = record.finished
    if end is None and record.datetime_complete is not None:
        end = record.datetime_complete.timestamp()
    return max(0.0, (now if end is None else end) - record.started)


def campaign_cost(records: Iterable[TrialRecord], now: float, lost: Container[int] = ()) -> Cost:
    """The cost of the trials in ``records`` (``lost``: RUNNING trials whose driver is
    gone; not counted, their end is unknown)."""
    ran: list[tuple[str, TrialRecord, float]] = []
    for record in records:
        kind = outcome(record)
        if kind is None or (kind == RUNNING and record.number in lost):
            continue
        seconds = seconds_used(record, now)
        if seconds > 0:
            ran.append((kind, record, seconds))
    cost = Cost()
    known = [r.provenance for _, r, _ in ran if r.provenance is not None]
    typical_cores = _median([p.cores for p in known]) or _cores_from_metrics(ran) or 1.0
    typical_node = _median([p.node_cores for p in known])
    typical_gpus = _median([p.gpus for p in known]) or 0.0
    cost.node_known = typical_node is not None
    spans: dict[str, list[tuple[float, float, float, float | None, float]]] = defaultdict(list)
    for kind, record, seconds in ran:
        p = record.provenance
        if p is None:
            cost.without_provenance += 1
        else:
            cost.with_provenance += 1
        cores = (p.cores if p else None) or typical_cores
        node = (p.node_cores if p else None) or typical_node
        gpus = p.gpus if p is not None and p.gpus is not None else typical_gpus
        usage = cost.usage.setdefault(kind, Usage())
        usage.trials += 1
        usage.add(seconds, cores, node, gpus)
        if record.worker and record.started is not None:
            spans[record.worker].append((record.started, seconds, cores, node, gpus))
    idle = _idle(spans)
    if idle.seconds > 0:
        cost.usage[IDLE] = idle
    cost.usage = {k: cost.usage[k] for k in OUTCOMES if k in cost.usage}
    return cost


def _idle(spans: dict[str, list[tuple[float, float, float, float | None, float]]]) -> Usage:
    """Gaps between consecutive trials of each worker, at what its next trial held."""
    idle = Usage()
    for mine in spans.values():
        mine.sort()
        end = None
        for start, seconds, cores, node, gpus in mine:
            if end is not None and start > end:
                idle.add(start - end, cores, node, gpus)
            end = max(end or start, start + seconds)
    return idle


def _median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None and v > 0]
    return statistics.median(found) if found else None


def _cores_from_metrics(ran: list[tuple[str, TrialRecord, float]]) -> float | None:
    """Cores per trial as older trials tell it: their node_seconds over train_seconds."""
    ratios = []
    for _, record, _ in ran[:1000]:
        node, train = record.metrics.get("node_seconds"), record.metrics.get("train_seconds")
        if node is not None and train is not None and train > 0:
            ratios.append(node / train)
    return round(statistics.median(ratios), 2) if ratios else None
