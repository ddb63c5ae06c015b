"""A simulated batch cluster whose jobs retire at their lifetime: the cluster of
``supervisor.perf.changeover``, on the virtual clock of ``supervisor.perf.scale_cluster``.

Jobs of ``--processes`` workers are asked for, wait in the queue (``--queue-wait``), start
their workers (``--startup``) and retire at their lifetime; the scaling loop runs every
second, as Dask's ``Adaptive`` does, with one of two policies:

* "dask" (before): each worker draws its lifetime as ``--lifetime-stagger`` does (lifetime
  +- stagger, uniform); a job is asked for again once its worker has been gone for
  ``distributed.deploy.lost-worker-timeout`` (a job of several workers never is: Dask
  looks the job up by the worker's name).
* "renewal" (after): ``supervisor.clusters.renewal`` sets each job's lifetime and asks
  for a replacement ahead of each retirement, from the waits and trial durations it saw.

Trials are placed as the scheduler places them: each goes at once to the least loaded of
the workers the driver allows (its placement's loose restriction; any worker when none of
those is left) and waits in that worker's queue; nothing is stolen. A retiring worker's
queued trials move to other workers and its running trial starts again elsewhere (Dask
reschedules the tasks of a worker that closed gracefully): that partial run is wasted.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.clusters.renewal import Renewal
from supervisor.execution.trial import TrialSpec
from supervisor.perf import harness
from supervisor.perf.scale_cluster import Clock, MapBySubmit, SimFuture, trial_result

ADAPT_EVERY = 1.0  # distributed.adaptive.interval
LOST_WORKER_TIMEOUT = 15.0  # distributed.deploy.lost-worker-timeout
LIFETIME_STARTS = 0.2  # seconds before it connects that a worker's lifetime starts


class JobFuture(SimFuture):
    def __init__(self, key: str, spec: TrialSpec, allowed: set[str] | None) -> None:
        super().__init__(key, spec)
        self.allowed = allowed  # the driver's placement restriction (loose)
        self.run = 0  # bumped when it is rescheduled: its pending events are stale
        self.on: SimWorker | None = None  # the worker running it


@dataclass
class SimWorker:
    address: str
    job: SimJob
    lifetime: float  # as the worker counts it, from its start
    started: float = math.inf  # virtual time its lifetime started
    running: tuple[JobFuture, float] | None = None  # the trial and when it started
    queue: deque[JobFuture] = field(default_factory=deque)
    closed: bool = False

    @property
    def load(self) -> int:
        return len(self.queue) + (self.running is not None)


@dataclass
class SimJob:
    name: str
    requested: float
    workers: list[SimWorker] = field(default_factory=list)
    began: float | None = None  # the batch system started it (allocation from here)
    ended: float | None = None  # its last worker left
    dropped: bool = False  # no longer in the scaling loop's plan


@dataclass
class Stats:
    busy: list[tuple[float, float]] = field(default_factory=list)  # trials that finished
    wasted: float = 0.0  # partial runs cut by a retirement
    cut: int = 0
    alive: list[tuple[float, int]] = field(default_factory=list)  # (time, workers up after)


class JobCluster:
    """Jobs with lifetimes, per-worker queues, the scaling loop; the driver's inbox."""

    def __init__(self, args: Any, clock: Clock, policy: str) -> None:
        self.args, self.clock, self.policy = args, clock, policy
        self.rng = random.Random(args.seed)
        self.mu = math.log(args.mean) - args.sigma**2 / 2
        self.lifetime, self.stagger = args.lifetime, args.stagger
        self.renewal = Renewal(args.lifetime + args.stagger, args.spread)
        self.jobs: dict[str, SimJob] = {}
        self.workers: dict[str, SimWorker] = {}  # connected, not retired
        self.unplaced: deque[JobFuture] = deque()  # no worker at all yet
        self.trial_events: list[tuple[float, int, str, JobFuture, int, int]] = []
        self.cluster_events: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.names = itertools.count()
        self.stats = Stats()
        self.wall0 = 1.7e9
        self.objective: Callable[[dict[str, Any]], float] = harness.loss_of
        for _ in range(args.jobs):
            self._ask(0.0)
        self._at(ADAPT_EVERY, "adapt", None)

    # -- jobs --------------------------------------------------------------------------

    def _ask(self, now: float) -> None:
        name = f"job-{next(self.names)}"
        job = self.jobs[name] = SimJob(name, now)
        wait = self.rng.uniform(*self.args.queue_wait)
        if self.policy == "renewal":
            lifetimes = [self.renewal.new_job(name, now) or math.inf] * self.args.processes
        else:  # dask: each worker draws lifetime +- stagger
            lifetimes = [
                self.lifetime + self.rng.uniform(-1, 1) * self.stagger
                for _ in range(self.args.processes)
            ]
        for i, lifetime in enumerate(lifetimes):
            job.workers.append(SimWorker(f"tcp://{name}-{i}:40000", job, lifetime))
        self._at(now + wait, "begin", job)

    def _at(self, when: float, kind: str, what: Any) -> None:
        heapq.heappush(self.cluster_events, (when, next(self.seq), kind, what))

    def _cluster_event(self, now: float, kind: str, what: Any) -> None:
        if kind == "adapt":
            self._adapt(now)
            self._at(now + ADAPT_EVERY, "adapt", None)
        elif kind == "begin":
            what.began = now
            self._at(now + self.args.startup, "connect", what)
        elif kind == "connect":
            for worker in what.workers:
                worker.started = now - LIFETIME_STARTS
                self.workers[worker.address] = worker
                self._at(worker.started + worker.lifetime, "retire", worker)
            while self.unplaced:
                self._place(self.unplaced.popleft(), now)
            for worker in what.workers:
                self._next(worker, now)
            self._count(now)
        elif kind == "retire":
            self._retire(what, now)

    def _adapt(self, now: float) -> None:
        """One pass of the scaling loop (``Adaptive.adapt``), as each policy does it."""
        if self.policy == "dask":  # gone for the lost-worker timeout: asked for again
            lost = [
                job
                for job in self.jobs.values()
                if job.ended is not None
                and not job.dropped
                and self.args.processes == 1
                and now - job.ended >= LOST_WORKER_TIMEOUT
            ]
            for job in lost:
                job.dropped = True
                self._ask(now)
            return
        connected = {w.job.name for w in self.workers.values()}
        for name in self.renewal.observe(connected, now):
            self.jobs[name].dropped = True
        leaving = self.renewal.leaving(now)
        planned = sum(1 for j in self.jobs.values() if not j.dropped)
        wanted = self.args.jobs + leaving
        self.renewal.replacements_unasked(wanted - planned)
        for _ in range(wanted - planned):
            self._ask(now)

    def _retire(self, worker: SimWorker, now: float) -> None:
        worker.closed = True
        del self.workers[worker.address]
        moved = list(worker.queue)
        worker.queue.clear()
        if worker.running is not None:  # rescheduled by Dask: this run is lost
            future, start = worker.running
            worker.running = None
            self.stats.wasted += now - start
            self.stats.cut += 1
            future.run += 1
            moved.insert(0, future)
        for future in moved:
            self._place(future, now)
        if all(w.closed for w in worker.job.workers):
            worker.job.ended = now
        self._count(now)

    def _count(self, now: float) -> None:
        self.stats.alive.append((now, len(self.workers)))

    # -- trials ------------------------------------------------------------------------

    def submit(self, future: JobFuture) -> None:
        self.clock.charge(self.args.dask_ms / 1000)
        self._place(future, self.clock.now())

    def _place(self, future: JobFuture, now: float) -> None:
        """``decide_worker``: the least loaded of the allowed workers, else of all."""
        alive = list(self.workers.values())
        if not alive:
            self.unplaced.append(future)
            return
        allowed = [w for w in alive if future.allowed is None or w.address in future.allowed]
        worker = min(allowed or alive, key=lambda w: (w.load, w.started))
        worker.queue.append(future)
        self._next(worker, now)

    def _next(self, worker: SimWorker, now: float) -> None:
        if worker.running is not None or not worker.queue:
            return
        future = worker.queue.popleft()
        at = now + self.args.dispatch_ms / 1000
        worker.running = (future, at)
        future.on = worker
        duration = self.rng.lognormvariate(self.mu, self.args.sigma)
        self._trial(at, "started", future)
        end, epochs = at + duration, self.args.epochs
        for epoch in range(epochs):
            self._trial(min(end, at + duration * (epoch + 1) / epochs), "epoch", future, epoch)
        self._trial(end, "done", future)

    def _trial(self, at: float, kind: str, future: JobFuture, epoch: int = 0) -> None:
        heapq.heappush(self.trial_events, (at, next(self.seq), kind, future, future.run, epoch))

    def pop_due(self) -> list[tuple[str, Any]]:
        """The driver's inbox: what is due by now, else up to the next event (time jumps)."""
        now = self.clock.now()
        heads = [h[0][0] for h in (self.trial_events, self.cluster_events) if h]
        if heads and min(heads) > now:
            now = min(heads)
        items: list[tuple[str, Any]] = []
        while True:
            trial = self.trial_events[0][0] if self.trial_events else math.inf
            other = self.cluster_events[0][0] if self.cluster_events else math.inf
            if min(trial, other) > now:
                break
            if other < trial:
                when, _, kind, what = heapq.heappop(self.cluster_events)
                self._cluster_event(when, kind, what)
                continue
            item = self._deliver(*heapq.heappop(self.trial_events))
            if item is not None:
                items.append(item)
        self.clock.set(now)
        return items

    def _deliver(
        self, at: float, _seq: int, kind: str, future: JobFuture, run: int, epoch: int
    ) -> tuple[str, Any] | None:
        if run != future.run:
            return None  # the run its retiring worker cut
        worker = future.on
        assert worker is not None
        spec = future.spec
        base = {"study": spec.study_name, "trial": spec.trial_number}
        if kind == "started":
            msg = {"kind": "started", "worker": worker.address, "hostname": worker.job.name}
            return "event", {**base, **msg, "time": self.wall0 + at}
        loss = self.objective(spec.params)
        if kind == "epoch":
            metrics = {"loss": loss + 1.0 / (epoch + 1)}
            return "event", {**base, "kind": "epoch", "epoch": epoch, "metrics": metrics}
        assert worker.running is not None
        start = worker.running[1]
        worker.running = None
        self.stats.busy.append((start, at))
        self.renewal.trial_finished(at - start)
        result = trial_result(spec, worker.job.name, self.wall0 + start, self.wall0 + at, loss)
        result.worker = worker.address
        future._result = result
        self._next(worker, at)
        return "done", (future, result)

    # -- what the driver's placement asks of Dask ----------------------------------------

    def lifetimes(self, addresses: list[str]) -> dict[str, Any]:
        """What ``placement._lifetime_of`` answers on each worker."""
        return {
            a: {"lifetime": w.lifetime, "started": self.wall0 + w.started}
            for a in addresses
            if (w := self.workers.get(a)) is not None
        }


class JobClient(MapBySubmit):
    """The part of ``distributed.Client`` the driver uses, on the simulated jobs."""

    def __init__(self, cluster: JobCluster) -> None:
        self.cluster = cluster

    def submit(
        self, fn: Callable[..., Any], spec: TrialSpec, key: str, pure: bool, **where: Any
    ) -> JobFuture:
        allowed = where.get("workers")
        future = JobFuture(key, spec, set(allowed) if allowed else None)
        self.cluster.submit(future)
        return future

    def cancel(self, futures: list[Any], force: bool = False) -> None:
        pass  # the simulation stops on its budget only

    def scheduler_info(self, n_workers: int = 0) -> dict[str, Any]:
        return {"workers": {a: {} for a in self.cluster.workers}}

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        # The placement asks new workers for their lifetimes (the only call naming
        # workers); cancelling or listing executing trials finds nothing to do here.
        if kwargs.get("workers"):
            return self.cluster.lifetimes(list(kwargs["workers"]))
        return {}
