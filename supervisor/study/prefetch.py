"""How many trials the driver queues beyond the free slots (prefetch), sized from the
measured trial durations and the driver's own cost per trial.

A queued trial hides the round trip driver <-> worker (tell, ask, submit, dispatch) from
its slot, but it is asked early: the sampler proposes it without the results that arrive
while it waits, and every queued trial is one more pending point (TPE's constant liar, the
start-up of model-based samplers counts finished trials only). That buys throughput only
when the round trip is a noticeable part of a trial: with trials of minutes it costs
information and buys nothing.

So nothing is queued ahead until trials are known to be short: once ``MIN_SAMPLES`` trials
have finished, the idle share a slot would see without prefetch is ``R / d`` (``R``: the
round trip, the driver's measured time per trial plus ``DISPATCH_S`` for Dask; ``d``: the
median recent trial duration). Below ``IDLE_OK`` nothing is queued. Above it, enough are
queued to cover the slots that free during one round trip (Poisson, mean
``m = slots * R / d``, covered with ``m + 2 sqrt(m) + 1``), at most one per slot.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

MIN_SAMPLES = 3  # finished trials before their durations are trusted
IDLE_OK = 0.01  # a slot idle 1 % of the time without prefetch: not worth any information
DISPATCH_S = 0.03  # Dask's share of a round trip (scheduler, worker, result), measured
#   here with 0.05 s trials on 2 workers: only 2 in flight lost 38 % to round trips
SMOOTHING = 0.1  # weight of the newest measurement in the driver's cost per trial


class Prefetch:
    def __init__(self, slots: int, fixed: int | None = None) -> None:
        """``fixed``: queue exactly this many (``--prefetch N``); None: sized as above."""
        self.slots = slots
        self.fixed = None if fixed is None else max(0, fixed)
        # The driver's own seconds per trial, smoothed: asking and submitting it, and
        # recording its result.
        self.cost = {"ask": 0.0, "record": 0.0}

    def spent(self, step: str, seconds: float) -> None:
        """The driver spent ``seconds`` on ``step`` ("ask" or "record") of one trial."""
        old = self.cost[step]
        self.cost[step] = seconds if old == 0.0 else old + SMOOTHING * (seconds - old)

    @property
    def driver_s(self) -> float:
        return sum(self.cost.values())

    def ahead(self, durations: Sequence[float]) -> int:
        """Trials to queue beyond the slots, given the recent trial durations."""
        if self.fixed is not None:
            return self.fixed
        if len(durations) < MIN_SAMPLES:
            return 0
        duration = max(statistics.median(durations), 1e-6)
        round_trip = self.driver_s + DISPATCH_S
        if round_trip / duration < IDLE_OK:
            return 0
        mean = self.slots * round_trip / duration
        return min(self.slots, math.ceil(mean + 2 * math.sqrt(mean) + 1))
