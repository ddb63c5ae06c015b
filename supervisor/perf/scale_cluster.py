"""The simulated Dask cluster of ``supervisor.perf.scale``: ``--workers`` slots fed FIFO,
lognormal trial durations, the events a worker sends, and a virtual clock that skips the
time the driver only waits. ``SimClient`` is the part of ``distributed.Client`` the
driver uses."""

from __future__ import annotations

import abc
import argparse
import dataclasses
import heapq
import itertools
import math
import pickle
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.execution.trial import NON_FINITE, TrialResult, TrialSpec, model_failure
from supervisor.perf import harness


class SimFuture:
    """What ``client.submit`` returns: done once its simulated trial ended."""

    def __init__(self, key: str, spec: TrialSpec) -> None:
        self.key = key
        self.spec = spec
        self._result: TrialResult | None = None

    def done(self) -> bool:
        return self._result is not None

    def result(self) -> TrialResult:
        assert self._result is not None
        return self._result


@dataclass(order=True)
class _Event:
    time: float
    seq: int
    kind: str = field(compare=False)  # "started" | "epoch" | "done"
    future: SimFuture = field(compare=False)
    epoch: int = field(default=0, compare=False)


@dataclass
class Slot:
    index: int
    free_since: float = 0.0  # end of its last trial (0: the campaign start)
    busy: float = 0.0  # seconds in trials
    idle: float = 0.0  # seconds between campaign start / trial end and its next start
    last_end: float = 0.0


class Clock:
    """Virtual seconds: real time runs while the driver works; waits are skipped."""

    def __init__(self) -> None:
        self.base_virtual = 0.0
        self.base_real = time.perf_counter()

    def now(self) -> float:
        return self.base_virtual + (time.perf_counter() - self.base_real)

    def set(self, virtual: float) -> None:
        self.base_virtual, self.base_real = virtual, time.perf_counter()

    def charge(self, seconds: float) -> None:
        """Driver-thread time spent outside this process's view (Dask's client side)."""
        self.base_virtual += seconds


class Cluster:
    """``--workers`` slots fed FIFO, lognormal trial durations, worker events."""

    def __init__(self, args: argparse.Namespace, clock: Clock) -> None:
        self.args, self.clock = args, clock
        self.rng = random.Random(args.seed)
        self.mu = math.log(args.mean) - args.sigma**2 / 2  # lognormal with mean args.mean
        self.free = [Slot(i) for i in range(args.workers)]
        self.slots = list(self.free)
        self.queue: deque[SimFuture] = deque()
        self.events: list[_Event] = []
        self.seq = itertools.count()
        self.running: dict[SimFuture, tuple[Slot, float]] = {}
        self.wall0 = time.time()
        # What a trial of these parameters scores (perf.quality puts a test function here).
        self.objective: Callable[[dict[str, Any]], float] = harness.loss_of

    def submit(self, future: SimFuture) -> None:
        self.clock.charge(self.args.dask_ms / 1000)
        pickle.dumps(future.spec)  # what Dask does to every spec it ships
        at = self.clock.now()
        if self.free:
            self._start(future, self.free.pop(), at + self.args.dispatch_ms / 1000)
        else:
            self.queue.append(future)

    def _start(self, future: SimFuture, slot: Slot, at: float) -> None:
        duration = self.rng.lognormvariate(self.mu, self.args.sigma)
        slot.idle += at - slot.free_since
        self.running[future] = (slot, at)
        self._push(at, "started", future)
        end, epochs = at + duration, self.args.epochs
        for epoch in range(epochs):  # the last one exactly at the end, before "done"
            self._push(min(end, at + duration * (epoch + 1) / epochs), "epoch", future, epoch)
        self._push(end, "done", future)

    def _push(self, at: float, kind: str, future: SimFuture, epoch: int = 0) -> None:
        heapq.heappush(self.events, _Event(at, next(self.seq), kind, future, epoch))

    def pop_due(self) -> list[tuple[str, Any]]:
        """The driver's inbox: everything due by now, else the next event (time jumps)."""
        now = self.clock.now()
        if self.events and self.events[0].time > now:
            now = self.events[0].time
        items: list[tuple[str, Any]] = []
        while self.events and self.events[0].time <= now:
            event = heapq.heappop(self.events)
            items.append(self._deliver(event))
        self.clock.set(now)
        return items

    def _deliver(self, event: _Event) -> tuple[str, Any]:
        future, spec = event.future, event.future.spec
        slot, start = self.running[future]
        base = {"study": spec.study_name, "trial": spec.trial_number}
        if event.kind == "started":
            msg = {"kind": "started", "worker": _address(slot), "hostname": _host(slot)}
            return "event", {**base, **msg, "time": self.wall0 + event.time}
        loss = self.objective(spec.params)
        metrics = {"loss": loss + 1.0 / (event.epoch + 1)}
        if event.kind == "epoch":
            return "event", {**base, "kind": "epoch", "epoch": event.epoch, "metrics": metrics}
        del self.running[future]
        future._result = trial_result(
            spec, _host(slot), self.wall0 + start, self.wall0 + event.time, loss
        )
        future._result.worker = _address(slot)
        slot.busy += event.time - start
        slot.free_since = slot.last_end = event.time
        if self.queue:  # the scheduler hands the next queued trial to the freed worker
            self._start(self.queue.popleft(), slot, event.time + self.args.dispatch_ms / 1000)
        else:
            self.free.append(slot)
        return "done", (future, future._result)


def _address(slot: Slot) -> str:
    return f"tcp://10.0.{slot.index // 250}.{slot.index % 250}:40000"


def _host(slot: Slot) -> str:
    return f"nid{slot.index // 4:05d}"  # 4 trial slots per node


def trial_result(spec: TrialSpec, host: str, started: float, finished: float, loss: float) -> Any:
    """A ``TrialResult`` shaped like a real one: metrics, history, worker, host, times."""
    if not math.isfinite(loss):  # diverged: failed by the model, as the worker reports it
        why = f"objective loss is {loss} (diverged training?)"
        failed = model_failure(spec, started, NON_FINITE, why)
        return dataclasses.replace(failed, hostname=host, finished=finished)
    seconds = finished - started
    history = [
        {"epoch": float(e), "loss": loss + 1.0 / (e + 1), "val_loss": loss}
        for e in range(spec.epochs)
    ]
    return TrialResult(
        trial_number=spec.trial_number,
        status="complete",
        values=[loss],
        metrics={
            "loss": loss,
            "train_seconds": seconds,
            "node_seconds": seconds * spec.threads,
            "n_params": 1.2e6,
            "latency_ms": 0.4,
            "peak_memory_mb": 2100.0,
        },
        history=history,
        hostname=host,
        started=started,
        finished=finished,
        extra={"rss_mb": 2050.0},
    )


class MapBySubmit(abc.ABC):
    """``Client.map`` as the driver calls it (one spec per task key), as ``submit`` each."""

    @abc.abstractmethod
    def submit(
        self, fn: Callable[..., Any], spec: TrialSpec, key: str, pure: bool, **where: Any
    ) -> Any:
        """Hand one trial to the simulated cluster; its future."""

    def map(
        self,
        fn: Callable[..., Any],
        specs: list[TrialSpec],
        key: list[str],
        pure: bool,
        **where: Any,
    ) -> list[Any]:
        pairs = zip(specs, key, strict=True)
        return [self.submit(fn, s, key=k, pure=pure, **where) for s, k in pairs]


class SimClient(MapBySubmit):
    """The part of ``distributed.Client`` the driver uses, on the simulated cluster."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def submit(
        self, fn: Callable[..., Any], spec: TrialSpec, key: str, pure: bool, **where: Any
    ) -> SimFuture:
        future = SimFuture(key, spec)
        self.cluster.submit(future)
        return future

    def cancel(self, futures: list[SimFuture], force: bool = False) -> None:
        pass  # the simulation stops on its budget only

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}
