"""Trials in the worker's child process: killed on time or memory, replaced when it grows,
and a crash of the child is the infrastructure's failure, not the trial's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor.execution.trial_host import TrialHost
from tests.execution.test_worker import spec


@pytest.fixture
def host() -> Iterator[TrialHost]:
    h = TrialHost()
    yield h
    h.stop()


def run(h: TrialHost, number: int = 0, memory_limit_mb: float | None = None, **kw: Any) -> Any:
    return h.run(spec(number, isolation="process", **kw), memory_limit_mb=memory_limit_mb)


def test_trials_run_in_one_long_lived_child_that_keeps_the_data(host: TrialHost) -> None:
    first, second = run(host, 0), run(host, 1)
    assert first.status == second.status == "complete" and first.values == [1.0]
    assert first.pid == second.pid != os.getpid() and host.started == 1
    # The data set was loaded once, by the first trial only.
    assert first.data_seconds > 0 and second.data_seconds == 0


def test_a_trial_over_its_time_limit_is_killed_and_the_slot_is_free(host: TrialHost) -> None:
    slow = run(host, 0, params={"x": 1.0, "mode": "sleep", "seconds": 60}, time_limit=1.0)
    assert slow.status == "failed" and slow.failure == "model"
    assert slow.error_type == "TimeLimitExceeded" and slow.duration < 10
    after = run(host, 1)
    assert after.status == "complete" and host.started == 2


def test_a_trial_over_the_memory_limit_is_killed_as_a_model_failure(host: TrialHost) -> None:
    baseline = run(host, 0).extra["rss_mb"]
    hog = run(
        host,
        1,
        memory_limit_mb=baseline + 150,
        params={"x": 1.0, "mode": "hog", "mb": 400, "seconds": 30},
    )
    assert hog.failure == "model" and hog.error_type == "MemoryLimitExceeded"
    assert hog.duration < 10, "the monitor polls twice a second"
    assert run(host, 2).status == "complete"


def test_a_crash_of_the_child_is_an_infrastructure_failure(host: TrialHost) -> None:
    crash = run(host, 0, params={"x": 1.0, "mode": "exit"})
    assert crash.status == "failed" and crash.failure == "infrastructure"
    assert crash.error_type == "TrialProcessDied" and "exit 13" in (crash.error or "")
    assert run(host, 1).status == "complete" and host.started == 2


def test_exceptions_stay_model_failures_with_their_traceback(host: TrialHost) -> None:
    bad = run(host, 0, params={"x": 1.0, "mode": "raise"})
    assert bad.failure == "model" and "exploded on purpose" in (bad.traceback or "")
    assert host.started == 1, "an exception does not cost the child"


def test_a_child_that_grew_too_much_is_replaced(host: TrialHost) -> None:
    host.growth_limit_mb = 50
    assert run(host, 0).status == "complete"
    small = run(host, 1, params={"x": 1.0, "mode": "leak", "mb": 10})
    assert small.status == "complete" and host.proc is not None, "10 MB is within bounds"
    big = run(host, 2, params={"x": 1.0, "mode": "leak", "mb": 100})
    assert big.status == "complete", "the trial that crossed the line still counts"
    assert big.extra["host_recycled_mb"] > 100 and host.proc is None
    after = run(host, 3)
    assert after.status == "complete" and host.started == 2 and after.pid != big.pid


def test_the_driver_can_stop_a_running_trial_from_another_thread(host: TrialHost) -> None:
    import threading

    from supervisor.execution.worker import cancel_trials

    stopper = threading.Timer(1.0, cancel_trials, ("s", [4]))
    stopper.start()
    stopped = run(host, 4, params={"x": 1.0, "mode": "sleep", "seconds": 60})
    stopper.join()
    assert stopped.failure == "interrupted" and stopped.duration < 10
    assert cancel_trials("s", [4]) == [], "nothing runs any more"
    assert run(host, 5).status == "complete"
