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

import time
from typing import Any

MIN_SAMPLES = 3  # finished trials before their durations are trusted as an estimate
PERCENTILE = 90.0
MARGIN = 1.25  # the estimate is the percentile times this
REFRESH_EVERY = 5.0  # seconds between looks at which workers are connected
RECENT = 50  # the estimate follows the most recent durations (the sampler moves on)


def _lifetime_of(dask_worker: Any) -> dict[str, float | None]:
    """On a worker: its lifetime (s, stagger included) and when its process started. The
    lifetime counts from the worker's start, a little after: the deadline errs early."""
    import psutil  # type: ignore[import-untyped]

    lifetime = getattr(dask_worker, "lifetime", None)
    started = psutil.Process().create_time()
    return {"lifetime": float(lifetime) if lifetime else None, "started": started}


class Placement:
    """Which workers can fit a trial, from the workers' lifetimes and recent durations."""

    def __init__(self, client: Any, clock: Any = time.time) -> None:
        self.client = client
        self.clock = clock
        self.deadlines: dict[str, float | None] = {}  # worker address -> retirement time
        self.durations: list[float] = []
        self._looked = -float("inf")

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
        try:
            connected = set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # the scheduler is busy or gone: keep what is known
            return
        for gone in set(self.deadlines) - connected:
            del self.deadlines[gone]
        new = sorted(connected - set(self.deadlines))
        if not new:
            return
        try:
            info = self.client.run(_lifetime_of, workers=new, on_error="ignore")
        except Exception:
            return
        for address in new:
            item = info.get(address)
            if not isinstance(item, dict):
                continue  # left meanwhile, or it failed: asked again next time
            lifetime, started = item.get("lifetime"), item.get("started")
            born = started if isinstance(started, float) else now
            self.deadlines[address] = born + lifetime if lifetime else None


def executing_keys(client: Any, fallback: set[str]) -> set[str]:
    """Keys of the tasks the workers are executing now (not those queued on them);
    ``fallback`` when a worker goes away mid-call."""

    def executing(dask_worker: Any) -> list[str]:
        return [str(ts.key) for ts in dask_worker.state.executing]

    try:
        per_worker = client.run(executing)
    except Exception:
        return fallback
    return {key for keys in per_worker.values() for key in keys}
