"""A driver killed between any two of its writes loses no trial: a trial it closes as
stopped (its driver died, its worker died, the campaign was interrupted) is closed *and*
queued again once, whichever write the kill came after."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from supervisor.study import attrs, recovery
from supervisor.study.events import Silent
from supervisor.study.journal_file import SafeJournalFileBackend
from supervisor.study.recorder import Recorder
from supervisor.study.storage import open_storage
from tests.study.test_driver import experiment

DEAD = f"{socket.gethostname()}:{2**22 + 12345}:dead"
X = {"x": optuna.distributions.FloatDistribution(-4, 4)}


class Killed(BaseException):
    """kill -9 after a write: nothing after it runs."""


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(url))


def _close_dead(study: optuna.Study) -> None:
    recovery.recover(study)


def _recorder(tmp_path: Path, how: str) -> Callable[[optuna.Study], None]:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 4, epochs: 1}")

    def act(study: optuna.Study) -> None:
        trial = optuna.Trial(study, study.get_trials(deepcopy=False)[0]._trial_id)
        rec = Recorder(exp, study, Silent(), None, max_attempts=3)
        if how == "interrupted":
            rec.interrupted(trial, "Interrupted", "stopped by the user (Ctrl-C)")
        else:
            rec.worker_lost(trial, "KilledWorker", "its worker died", started=True)

    return act


def _writes(url: str, act: Callable[[optuna.Study], None], kill_after: int | None) -> int:
    """Run ``act`` on a fresh study of ``url``, killed after ``kill_after`` appends to
    the journal; returns the appends made."""
    made = 0
    real = SafeJournalFileBackend.append_logs

    def append(self: SafeJournalFileBackend, logs: list[dict[str, Any]]) -> None:
        nonlocal made
        if kill_after is not None and made >= kill_after:
            raise Killed
        real(self, logs)
        made += 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SafeJournalFileBackend, "append_logs", append)
        with contextlib.suppress(Killed):
            act(_study(url))
    return made


@pytest.mark.parametrize("how", ["recovery", "interrupted", "worker_lost"])
def test_a_kill_between_closing_a_trial_and_queueing_it_again_loses_no_trial(
    tmp_path: Path, how: str
) -> None:
    """Recovery, and the driver when a trial was interrupted or its worker died, closed
    the trial as failed and then queued its parameters again: two writes. Killed between
    them, the trial stayed failed and unqueued, and no later start ran it again (it fell
    out of the budget; an ensemble member was lost). Each kill point is tried."""
    act = _close_dead if how == "recovery" else _recorder(tmp_path, how)

    def fresh(folder: Path) -> str:
        url = f"journal:{folder / 'j.log'}"
        study = optuna.create_study(storage=open_storage(url), study_name="s")
        trial = study.ask(X)
        trial.set_user_attr(attrs.DRIVER, DEAD)
        study.set_user_attr(attrs.HEARTBEAT_PREFIX + DEAD, 1.0)
        return url

    total = _writes(fresh(tmp_path / "all"), act, None)
    assert total >= 2
    for kill_after in range(total + 1):
        url = fresh(tmp_path / str(kill_after))
        _writes(url, act, kill_after)
        study = _study(url)
        recovery.recover(study)  # the next start, or another driver taking over
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        assert states[0] == TrialState.FAIL, kill_after
        queued = [t for t in trials if t.state == TrialState.WAITING]
        assert len(queued) == 1, (kill_after, states)
        assert queued[0].user_attrs[attrs.RETRY_OF] == 0
        assert [t.state for t in trials[1:]].count(TrialState.FAIL) == 0, kill_after


def test_a_queued_trial_whose_driver_died_before_giving_its_parameters_reruns_them(
    tmp_path: Path,
) -> None:
    """A driver killed between asking a queued trial (a re-run, an ensemble member) and
    writing its driver and parameters left it RUNNING with its parameters still in
    Optuna's fixed_params: recovery re-queued it with none, and the re-run sampled a new
    configuration under the old one's chain and seed (a member of another model)."""
    import time

    url = f"journal:{tmp_path / 'j.log'}"
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + DEAD, time.time())
    study.enqueue_trial({"x": 1.5}, user_attrs={attrs.SEED: 7, attrs.MEMBER_OF: 3})
    study.ask()  # popped, then killed: no driver, no parameters written
    assert recovery.recover(_study(url)).zombies == [0]
    queued = _study(url).get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(queued) == 1
    asked = _study(url).ask(X)
    assert asked.number == queued[0].number and asked.params == {"x": 1.5}
    assert asked.user_attrs[attrs.SEED] == 7 and asked.user_attrs[attrs.MEMBER_OF] == 3


def test_a_dead_driver_whose_pid_another_process_took_is_dead(tmp_path: Path) -> None:
    """A driver killed on a login node, resumed days later: its pid now belongs to
    another process. Recovery asked only whether the pid ran, so the dead driver's trials
    stayed RUNNING, and the resumed search waited on them for ever."""
    import subprocess
    import sys
    import time

    import psutil

    study = optuna.create_study()
    trial = study.ask(X)
    beat = time.time() - 3600  # its last heartbeat, an hour ago
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            driver = f"{socket.gethostname()}:{other.pid}:dead"
            trial.set_user_attr(attrs.DRIVER, driver)
            study.set_user_attr(attrs.HEARTBEAT_PREFIX + driver, beat)
            assert recovery.recover(study).zombies == [0]
        finally:
            other.kill()
    # A live driver of this host, with a fresh heartbeat, is alive.
    alive = f"{socket.gethostname()}:{os.getpid()}:alive"
    assert recovery.driver_alive(alive, {alive: time.time()}, time.time(), 30.0)
    # Its pid with a heartbeat from before this process started is another, dead, driver's
    # (an hour ago is not enough: this test process may be older than that in a long run).
    before_start = psutil.Process().create_time() - 60
    assert not recovery.driver_alive(alive, {alive: before_start}, time.time(), 30.0)
