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


def test_a_child_killed_by_a_signal_says_what_it_printed_last(
    host: TrialHost, capfd: pytest.CaptureFixture[str]
) -> None:
    """A segfault in native code sends no traceback: the record keeps the child's last
    lines of stderr (its own words and the Python stack faulthandler prints), which still
    reach the worker's log; the next trial's record starts clean."""
    crash = run(host, 0, params={"x": 1.0, "mode": "segfault"})
    assert crash.failure == "infrastructure" and "killed by signal 11" in (crash.error or "")
    error = crash.error or ""
    assert "its last output:\nnative kernel: bad descriptor 0x0" in error, error
    assert "Fatal Python error: Segmentation fault" in error
    assert "toy_benchmark.py" in error  # the Python frame that called into the crash
    assert "native kernel: bad descriptor 0x0" in capfd.readouterr().err
    assert run(host, 1).status == "complete"
    again = run(host, 2, params={"x": 1.0, "mode": "exit"})
    assert again.error == "the trial's process died (exit 13)"  # printed nothing itself


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


def test_a_failure_of_several_lines_is_one_line_of_the_campaign_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from supervisor.commands.progress import Display

    Display(force_plain=True).trial_done(
        4, "failed", None, None, error="died (signal 11); its last output:\nA\n  B", kind="x"
    )
    shown = capsys.readouterr().out
    assert shown == "trial 4 failed (x): died (signal 11); its last output: A B\n"
