"""``supervisor stop``: a request written into the storage stops a campaign's drivers
wherever they run (``supervisor.study.stop_request``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from distributed import Client
from optuna.trial import TrialState

from supervisor.commands.status import read_status
from supervisor.commands.stop import stop_campaign
from supervisor.study import attrs, recovery, stop_request
from supervisor.study.driver import Driver
from tests.study.test_driver import counts, experiment, make_study

X = "  x: {type: float, low: -4, high: 4}"


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "HEARTBEAT_EVERY", 0.2)  # drivers read the request sooner


@pytest.mark.parametrize("mode", ["drain", "now"])
def test_a_stop_request_ends_the_campaign_and_loses_nothing(
    tmp_path: Path, threads_client: Client, mode: str
) -> None:
    exp = experiment(tmp_path, X, "{trials: 200, epochs: 2}", options="{delay: 0.3}")
    study = make_study(exp)
    timer = threading.Timer(1.5, stop_request.ask, (study, mode))
    timer.start()
    summary = Driver(exp, study, threads_client, slots=2, prefetch=0).run()
    timer.join()
    assert summary.stopped_by == "requested" and summary.exit_code == 0
    assert summary.early.startswith(f"supervisor stop{' --now' if mode == 'now' else ''} by ")
    assert summary.finished < 40  # of 200: it stopped
    assert not study.get_trials(states=(TrialState.RUNNING,))
    interrupted = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "interrupted"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    # Queued again with their parameters: nothing lost.
    assert len(waiting) == len(interrupted)
    if mode == "drain":  # no running trial was cut short; one not started yet may be
        assert all(not t.intermediate_values for t in interrupted)
        assert all("not started" in t.user_attrs[attrs.ERROR] for t in interrupted)
    else:
        assert interrupted
        assert all("supervisor stop --now" in t.user_attrs[attrs.ERROR] for t in interrupted)
    assert summary.finished == counts(study)["COMPLETE"]

    # status says so, and counts nothing left: the submit chain ends too.
    study.set_user_attr(attrs.CONFIG, exp.to_dict())  # as `supervisor search` stores it
    status = read_status(study)
    assert status.stop_requested == summary.early and status.left == 0


def test_a_request_older_than_the_driver_is_left_to_the_user_but_ends_a_chain_link(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, X, "{trials: 3, epochs: 1}")
    study = make_study(exp)
    stop_request.ask(study, "drain")
    driver = Driver(exp, study, threads_client, slots=2)
    driver.stopping.since = 0.0  # as `supervisor search` sets it in a chain's driver job
    summary = driver.run()
    assert summary.stopped_by == "requested" and not study.trials  # nothing trained
    # A driver started after the request (a search the user typed) runs its budget.
    again = Driver(exp, study, threads_client, slots=2).run()
    assert again.stopped_by == "budget" and again.finished == 3


def test_stop_says_whether_a_driver_will_hear_it(tmp_path: Path) -> None:
    exp = experiment(tmp_path, X, "{trials: 3, epochs: 1}")
    study = make_study(exp)
    said = stop_campaign(study)
    assert said.startswith("No driver of 'toy' is running")
    assert stop_request.read(study) is not None  # a chain's next link will not start one
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + recovery.new_driver_id(), 1e18)
    assert stop_campaign(study, now=True).startswith("Asked 1 driver(s) of 'toy' to stop")
    request = stop_request.read(study)
    assert request is not None and request.mode == "now"
    stop_request.withdraw(study)
    assert stop_request.read(study) is None and read_status(study).stop_requested is None


def test_no_ensemble_is_trained_after_a_stop_request() -> None:
    from supervisor.commands.summary import ensemble_follows
    from supervisor.study.outcomes import Summary

    def ended(by: str) -> Summary:
        return Summary(10, 4, by, 1.0, recovery.Recovered([], 0))  # type: ignore[arg-type]

    assert not ensemble_follows(ended("requested")) and not ensemble_follows(ended("interrupt"))
    assert ensemble_follows(ended("budget")) and ensemble_follows(ended("target"))


def test_a_trial_that_ended_before_a_ctrl_c_is_recorded_as_it_ended(
    tmp_path: Path, threads_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C cancels the trials in flight and queues them again. One whose result had
    arrived, not yet taken by the driver, was cancelled too: recorded "interrupted", its
    result lost and its configuration trained again by the resume."""
    exp = experiment(tmp_path, X, "{trials: 1, epochs: 1}")
    study = make_study(exp)
    handle = Driver._handle

    def ctrl_c_as_it_ends(driver: Driver, items: list[tuple[str, Any]]) -> None:
        if any(kind != "event" for kind, _ in items) or any(f.done() for f in driver.inflight):
            driver._on_signal("SIGINT")  # before the driver takes the result
            return
        handle(driver, items)

    monkeypatch.setattr(Driver, "_handle", ctrl_c_as_it_ends)
    summary = Driver(exp, study, threads_client, slots=1, prefetch=0).run()
    assert summary.stopped_by == "interrupt"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert summary.finished == 1
