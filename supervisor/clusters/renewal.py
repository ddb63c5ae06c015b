"""When to renew a batch job before it retires, and how long each job lives.

Workers of batch jobs retire at a lifetime set before the walltime (``--lifetime``). Dask's
adaptive scaling replaces a job only after it is gone: once
``distributed.deploy.lost-worker-timeout`` (15 s) has passed, then the queue wait and the
worker's start-up, 10-25 s without that job's workers at every changeover. ``Renewal``
asks for the replacement ahead instead: a job within ``lead`` seconds of its retirement
counts as leaving, so one more job is requested while it still runs. The lead is the
longest recent wait from asking for a job to its worker connecting (with a margin), plus
a trial's duration: the driver's placement (``supervisor.study.placement``) gives a worker
no new trial it cannot finish, so a retiring worker stops taking trials that long before
its end and its replacement should be there by then. A job that retired is forgotten at
once, so Dask never re-submits it.

Lifetimes: every job gets one lifetime for all its workers (no per-worker stagger: a node
is released whole), the k-th job ``longest - frac(k x golden ratio) x spread``: any run of
jobs asked for together (a cohort) retires spread evenly over ``spread`` seconds, never
together. A replacement asked for ahead of a retirement gets the longest lifetime: it
inherits its predecessor's place in that spread.

Pure bookkeeping on times the caller passes in: ``supervisor.clusters.adaptive`` feeds it
from Dask, ``supervisor.perf.changeover`` from a simulated cluster.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from supervisor.study.placement import Placement

GOLDEN = (5**0.5 - 1) / 2  # frac(k x GOLDEN) spreads any k consecutive jobs evenly
# Lifetimes of a cohort spread over this share of the longest lifetime at least (the
# profile's lifetime +- stagger, 10 % of a default walltime, is often less).
COHORT_SPREAD = 0.2
WAITS_KEPT = 10  # the lead follows the longest of the most recent waits
WAIT_FACTOR = 1.25  # queue waits vary: renew this much earlier than the longest seen
MARGIN = 5.0  # seconds on top: the adaptive loop's period, the worker's last steps
MAX_LEAD_SHARE = 0.5  # never renew a job before half its lifetime
RETIRED_WITHIN = 0.05  # gone this close to its end (share of its lifetime): it retired


def cohort_spread(longest: float, stagger: float) -> float:
    """Seconds over which the lifetimes of a cohort spread: the profile's window (lifetime
    +- stagger), widened to ``COHORT_SPREAD`` of the longest lifetime."""
    return min(longest / 2, max(2 * stagger, COHORT_SPREAD * longest))


def default_lifetime(walltime: float, stagger: float | None = None) -> tuple[float, float]:
    """(lifetime, stagger) that end every worker before its job's walltime; ``stagger``:
    the profile's (None: 5 % of the walltime, at most 5 minutes).

    A job lives up to lifetime + stagger; the rest of the walltime (the grace) is left for
    the job to start its worker and for the worker to retire.
    """
    if stagger is None:
        stagger = min(0.05 * walltime, 300.0)
    grace = min(0.10 * walltime, 300.0)
    return walltime - stagger - grace, stagger


def lifetime_args(args: list[str], lifetime: float | None) -> list[str]:
    """The ``worker_extra_args`` of one job: the common ones, then its own lifetime."""
    return args if lifetime is None else [*args, "--lifetime", f"{lifetime:.0f}s"]


@dataclass
class JobLife:
    lifetime: float | None  # seconds its workers live; None: no limit, or unknown
    requested: float | None  # when it was asked for; None once connected (or unknown)
    connected: float | None = None  # when a worker of it was first seen
    renewed: bool = False  # counted as leaving: its replacement was asked for

    @property
    def deadline(self) -> float | None:
        """When its workers retire (they start a little before they connect: this errs
        late by that, which the margin covers)."""
        if self.lifetime is None or self.connected is None:
            return None
        return self.connected + self.lifetime


class Renewal:
    """Lifetimes of new jobs, and which running jobs are close enough to their end that
    their replacement must be asked for now."""

    def __init__(self, longest: float | None, spread: float = 0.0) -> None:
        self.longest = longest  # the longest lifetime a job may get (None: no lifetimes)
        self.spread = spread
        self.jobs: dict[str, JobLife] = {}
        self.waits: deque[float] = deque(maxlen=WAITS_KEPT)
        self.trials = Placement(None)  # its duration estimate only
        self._spread_jobs = 0  # jobs given a lifetime from the spread so far
        self._replacements = 0  # replacements asked for, not submitted yet

    # -- what happens -----------------------------------------------------------------

    def new_job(self, name: str, now: float) -> float | None:
        """A job is about to be submitted: its lifetime (None: no limit)."""
        lifetime = self.longest
        if lifetime is not None and self._replacements > 0:
            self._replacements -= 1
        elif lifetime is not None:
            lifetime -= (self._spread_jobs * GOLDEN % 1.0) * self.spread
            self._spread_jobs += 1
        self.jobs[name] = JobLife(lifetime, now)
        return lifetime

    def trial_finished(self, seconds: float) -> None:
        self.trials.finished(seconds)

    def observe(self, connected: Collection[str], now: float) -> list[str]:
        """``connected``: the jobs with a worker connected now. Returns the jobs that
        retired at their lifetime since the last look: gone, to be forgotten."""
        retired = []
        for name, job in list(self.jobs.items()):
            if name in connected:
                if job.connected is None:
                    job.connected = now
                    if job.requested is not None:
                        self.waits.append(max(0.0, now - job.requested))
                    job.requested = None
                continue
            if job.connected is None:
                continue  # still waiting in the queue, or starting
            deadline = job.deadline
            if deadline is not None and now >= deadline - RETIRED_WITHIN * (job.lifetime or 0):
                retired.append(name)
                del self.jobs[name]
            else:  # lost before its time (node failure): Dask's own recovery applies
                job.connected, job.renewed = None, False
        for name in set(connected) - set(self.jobs):  # not submitted through us
            self.jobs[name] = JobLife(None, None, now)
        return retired

    # -- what to do -------------------------------------------------------------------

    def lead(self) -> float | None:
        """Seconds before a job's end at which its replacement is asked for; None until a
        job has connected (its wait is the first estimate)."""
        if not self.waits:
            return None
        return max(self.waits) * WAIT_FACTOR + (self.trials.estimate() or 0.0) + MARGIN

    def leaving(self, now: float) -> int:
        """Running jobs within the lead of their end: each needs a replacement now."""
        lead = self.lead()
        if lead is None:
            return 0
        n = 0
        for job in self.jobs.values():
            deadline = job.deadline
            if deadline is None or job.lifetime is None:
                continue
            if deadline - now <= min(lead, MAX_LEAD_SHARE * job.lifetime):
                if not job.renewed:
                    job.renewed = True
                    self._replacements += 1
                n += 1
        return n

    def replacements_unasked(self, wanted: int) -> None:
        """The caller asked for only ``wanted`` of the replacements due (fewer jobs are
        needed now): the others get no longest lifetime later."""
        self._replacements = min(self._replacements, max(0, wanted))
