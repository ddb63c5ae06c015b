"""Lifetime-aware placement: do not start a trial on a worker that retires before it ends.

Workers of batch jobs get a lifetime below the job's walltime (``--lifetime`` with a
stagger, see supervisor.clusters.jobqueue). Once the driver has an estimate of a trial's
duration (a high percentile of the trials finished so far, with a margin), each trial is
submitted with a loose restriction to the workers whose remaining lifetime fits it: Dask
runs it on one of them, queued if they are busy, and on any worker only when none of
them is left. A trial that does not fit anywhere runs where it can: it resumes from its
epoch checkpoints when its worker retires, so it loses at most what was not saved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

MIN_SAMPLES = 3  # finished trials before their durations are trusted as an estimate
PERCENTILE = 90.0
MARGIN = 1.25  # the estimate is the percentile times this
REFRESH_EVERY = 5.0  # seconds between looks at which workers are connected
ASK_WAIT = 2.0  # seconds the driver waits for new workers' lifetimes, at most
# Seconds after which a question some worker never answers (a frozen worker holds it for
# as long as it is frozen) is given up and asked again, so workers that joined since are
# asked too.
GIVE_UP = 60.0
RECENT = 50  # the estimate follows the most recent durations (the sampler moves on)


def _lifetime_of(dask_worker: Any) -> dict[str, float | None]:
    """On a worker: its lifetime (s, stagger included) and when its process started. The
    lifetime counts from the worker's start, a little after: the deadline errs early."""
    import psutil  # type: ignore[import-untyped]

    lifetime = getattr(dask_worker, "lifetime", None)
    started = psutil.Process().create_time()
    return {"lifetime": float(lifetime) if lifetime else None, "started": started}


class Asking:
    """``client.run(fn, *args)`` on ``workers`` (default: the workers' lifetimes), on a
    daemon thread: a worker that does not answer delays the answer, not its asker (nor
    the interpreter's exit)."""

    def __init__(
        self,
        client: Any,
        workers: list[str] | None,
        since: float,
        fn: Callable[..., Any] = _lifetime_of,
        *args: Any,
    ) -> None:
        self.workers, self.since = workers, since
        self._info: dict[str, Any] = {}
        self._done = threading.Event()
        call = (client, fn, args)
        threading.Thread(target=self._ask, args=call, daemon=True).start()

    def _ask(self, client: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._info = client.run(fn, *args, workers=self.workers, on_error="ignore")
        except Exception:  # the scheduler is busy or gone: asked again next time
            self._info = {}
        finally:
            self._done.set()

    def answer(self, wait: float) -> dict[str, Any] | None:
        """What the workers said ({} when the question failed); None while it is out."""
        return self._info if self._done.wait(wait) else None


class Placement:
    """Which workers can fit a trial, from the workers' lifetimes and recent durations."""

    def __init__(self, client: Any, clock: Any = time.time) -> None:
        self.client = client
        self.clock = clock
        self.deadlines: dict[str, float | None] = {}  # worker address -> retirement time
        self.durations: list[float] = []
        self._looked = -float("inf")
        self._asking: Asking | None = None  # the question to new workers still out

    def finished(self, seconds: float) -> None:
        """A trial that ran to its end took ``seconds``."""
        if seconds > 0:
            self.durations = [*self.durations[-(RECENT - 1) :], seconds]

    def estimate(self) -> float | None:
        if len(self.durations) < MIN_SAMPLES:
            return None
        import numpy as np

        return float(np.percentile(self.durations, PERCENTILE)) * MARGIN

    def workers_for_next_trial(self) -> list[str] | None:
        """Addresses of the workers that can fit a trial; None: no restriction (no
        estimate yet, no worker with a lifetime, or none that fits)."""
        if len(self.durations) < MIN_SAMPLES:
            return None
        self._refresh()
        if all(d is None for d in self.deadlines.values()):
            return None
        needed = self.estimate()
        assert needed is not None
        now = self.clock()
        fits = [a for a, d in self.deadlines.items() if d is None or d - now >= needed]
        return sorted(fits) or None

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._looked < REFRESH_EVERY:
            return
        self._looked = now
        asking = self._asking
        if asking is not None:  # the last question is still out: never waited on again
            info = asking.answer(0.0)
            if info is None and now - asking.since < GIVE_UP:
                return
            self._asking = None  # answered, or given up on (its thread waits on alone)
            self._record(asking.workers or [], info or {}, now)
        try:
            connected = set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # the scheduler is busy or gone: keep what is known
            return
        for gone in set(self.deadlines) - connected:
            del self.deadlines[gone]
        new = sorted(connected - set(self.deadlines))
        if not new:
            return
        # A worker that does not answer (a suspended job, a hung node) holds Dask's
        # broadcast for its 30 s connect timeout, and asked again at every look it held
        # the driver most of the time: the question is asked on a thread of its own, and
        # waited for ASK_WAIT seconds at most.
        self._asking = Asking(self.client, new, since=now)
        info = self._asking.answer(ASK_WAIT)
        if info is not None:
            self._asking = None
            self._record(new, info, now)

    def _record(self, new: list[str], info: dict[str, Any], now: float) -> None:
        for address in new:
            item = info.get(address)
            if not isinstance(item, dict):
                continue  # left meanwhile, or it failed: asked again next time
            lifetime, started = item.get("lifetime"), item.get("started")
            born = started if isinstance(started, float) else now
            self.deadlines[address] = born + lifetime if lifetime else None


# A task's states on a worker once it has begun: running, or ended with its result (or
# error) on its way to the driver. A trial that had ended but whose result the driver had
# not yet taken was "not started" to a stop: cancelled, its result lost, and trained again.
BEGUN = frozenset({"executing", "long-running", "memory", "error"})


def _begun(dask_worker: Any) -> list[str]:
    return [str(key) for key, ts in dask_worker.state.tasks.items() if ts.state in BEGUN]


def begun_keys(client: Any, fallback: set[str], wait: float = ASK_WAIT) -> set[str]:
    """Keys of the tasks the workers have begun (``BEGUN``; not those queued on them); a
    worker that does not answer within ``wait`` seconds (frozen: a suspended job) counts
    as having begun every task it holds. ``fallback`` when the scheduler does not answer."""
    try:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    except Exception:
        return fallback
    # A frozen worker held Dask's broadcast, and the driver with it, for as long as it
    # was frozen (at the campaign's timeout): asked of all at once, then of each.
    now = time.monotonic()
    everyone = Asking(client, workers, now, _begun).answer(wait)
    if everyone is not None and all(isinstance(everyone.get(w), list) for w in workers):
        return {key for worker in workers for key in everyone[worker]}
    now = time.monotonic()
    askings = [Asking(client, [worker], now, _begun) for worker in workers]
    deadline = now + wait
    keys: set[str] = set()
    silent: list[str] = []
    for worker, asking in zip(workers, askings, strict=True):
        info = asking.answer(max(0.0, deadline - time.monotonic()))
        answer = (info or {}).get(worker)
        if isinstance(answer, list):
            keys.update(answer)
        else:  # frozen, or gone meanwhile (its tasks failed with it)
            silent.append(worker)
    if silent:
        try:  # what the scheduler put on them, queued or running: never cancelled
            processing = client.processing(workers=silent)
        except Exception:
            return fallback
        keys.update(str(key) for held in processing.values() for key in held)
    return keys


def tell_workers(client: Any, fn: Callable[..., Any], *args: Any, wait: float = ASK_WAIT) -> None:
    """``client.run(fn, *args)`` on every worker, waited for ``wait`` seconds at most: a
    frozen worker held the driver as long as it was frozen (stopping on Ctrl-C); the
    others hear it at once, and it does when it thaws."""
    Asking(client, None, time.monotonic(), fn, *args).answer(wait)
