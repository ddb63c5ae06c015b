"""Prefetch costs no information: trials are queued beyond the slots only when trials are
short enough for the round trip to matter, and then at most one per slot."""

from __future__ import annotations

import argparse
from unittest import mock

import optuna
import pytest
from optuna.trial import TrialState

from supervisor.config import space
from supervisor.execution import channel
from supervisor.perf import harness, quality
from supervisor.perf.problems import FUNCTION_PROBLEMS
from supervisor.perf.scale import Probe, SimChannel
from supervisor.perf.scale_cluster import Clock, Cluster, SimClient
from supervisor.study.driver import Driver
from supervisor.study.prefetch import MIN_SAMPLES, Prefetch


def test_nothing_is_queued_before_durations_are_known_nor_for_long_trials() -> None:
    prefetch = Prefetch(slots=64)
    assert prefetch.ahead([0.01] * (MIN_SAMPLES - 1)) == 0
    prefetch.spent("ask", 0.005)
    prefetch.spent("record", 0.002)
    assert prefetch.ahead([60.0, 45.0, 90.0]) == 0  # minutes-long trials: nothing ahead
    assert prefetch.ahead([0.05, 0.02, 0.04]) == 64  # sub-second: one per slot at most
    assert 0 < Prefetch(slots=64).ahead([2.0] * 5) < 64  # in between: what a round trip frees


def test_a_slow_sampler_queues_more_and_a_fixed_prefetch_is_kept() -> None:
    fast, slow = Prefetch(slots=100), Prefetch(slots=100)
    fast.spent("ask", 0.001)
    slow.spent("ask", 0.5)  # TPE on a large study: the round trip is the sampler
    assert slow.ahead([30.0] * 5) > fast.ahead([30.0] * 5) == 0
    assert Prefetch(slots=8, fixed=3).ahead([]) == 3
    assert Prefetch(slots=8, fixed=0).ahead([0.001] * 10) == 0


def running_at_each_ask(mean: float, slots: int, prefetch: int | None) -> list[int]:
    """The study's RUNNING trials each time the driver asks for a new one, in a campaign of
    the real driver on the simulated cluster (trials of ``mean`` virtual seconds)."""
    problem = FUNCTION_PROBLEMS["branin"]
    args = argparse.Namespace(
        workers=slots, mean=mean, sigma=0.5, epochs=1, seed=0, dask_ms=0.0, dispatch_ms=0.0
    )
    clock = Clock()
    cluster = Cluster(args, clock)
    cluster.objective = problem.regret
    seen: list[int] = []
    with harness.scratch() as folder:
        exp = space.loads(quality.space_text(problem, 40, "tpe", 0), "q.yaml")
        study = harness.open_study(exp, "memory")
        ask = study.ask

        def counting_ask(*a: object, **k: object) -> optuna.Trial:
            seen.append(len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))
            return ask(*a, **k)  # type: ignore[arg-type]

        study.ask = counting_ask  # type: ignore[method-assign]
        bound = type("Bound", (SimChannel,), {"cluster": cluster, "probe": Probe()})
        client = SimClient(cluster)
        driver = Driver(exp, study, client, slots=slots, prefetch=prefetch, run_dir=str(folder))  # type: ignore[arg-type]
        clock.set(0.0)
        with mock.patch.object(channel, "DriverChannel", bound):
            assert driver.run().finished == 40
    return seen


def test_with_trials_of_a_minute_the_sampler_never_sees_more_pending_than_slots() -> None:
    # Every ask happens with at most slots - 1 others running: the sampler is asked when a
    # slot frees, with every result that arrived until then.
    assert max(running_at_each_ask(60.0, slots=4, prefetch=None)) <= 3
    # One per slot, the old default, asked ahead of their slots.
    assert max(running_at_each_ask(60.0, slots=4, prefetch=4)) >= 4


@pytest.mark.parametrize("slots", [2, 4])
def test_with_millisecond_trials_trials_are_queued_ahead(slots: int) -> None:
    seen = running_at_each_ask(0.001, slots=slots, prefetch=None)
    assert max(seen) >= slots  # queued beyond the slots once durations are measured
    assert max(seen) <= 2 * slots - 1  # never more than one per slot
