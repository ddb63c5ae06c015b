"""The ETA of a campaign with a timeout (``budget.timeout``): at it the driver starts no
new trial, so a campaign whose budget would take 5 h at its pace ends in the 20 min its
timeout leaves. `status` and the progress bar said 5 h."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

import supervisor
from supervisor.commands.progress import Display
from supervisor.commands.status import print_status, read_status
from supervisor.study import attrs
from tests.commands.test_progress import Clock, _last_line, _terminal
from tests.commands.test_status_scale import DRIVER, NOW, _campaign
from tests.test_api import toy_space


def _shown(study: object) -> str:
    out = io.StringIO()
    print_status(study, Console(file=out, width=200, color_system=None), now=NOW)  # type: ignore[arg-type]
    return out.getvalue()


def test_status_shows_the_timeout_where_it_ends_the_campaign_first() -> None:
    """200 trials finished one a second; 100 left take 100 s at that pace."""
    study = _campaign(200)
    study.set_user_attr(attrs.DEADLINE_PREFIX + DRIVER, NOW + 30)
    status = read_status(study, now=NOW)
    assert status.by_timeout and status.eta == 30.0 and status.timeout_in == 30.0
    assert status.at_pace == pytest.approx(100, rel=0.05)
    assert "ETA 30.0 s: the timeout stops new trials then (running ones finish);" in _shown(study)
    assert "the 100 trials left would take" in _shown(study)

    study.set_user_attr(attrs.DEADLINE_PREFIX + DRIVER, NOW + 3600)  # after the budget
    status = read_status(study, now=NOW)
    assert not status.by_timeout and status.eta == status.at_pace
    assert "for 100 trials at" in _shown(study)
    assert "the timeout stops new trials in 1 h 00 min" in _shown(study)

    study.set_user_attr(attrs.DEADLINE_PREFIX + DRIVER, NOW - 5)  # running trials finish
    assert "timeout reached: no new trials, the 1 running finish;" in _shown(study)


def test_a_driver_without_a_timeout_leaves_the_eta_to_the_pace() -> None:
    """Two drivers run the campaign, one without a timeout: it runs to the budget."""
    study = _campaign(200)
    other = "login02:4343:live"
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + other, NOW - 1)
    study.set_user_attr(attrs.DEADLINE_PREFIX + DRIVER, NOW + 30)
    running = study.get_trials(deepcopy=False)[-1]
    study.enqueue_trial({"x": 0.5})
    waiting = study.get_trials(deepcopy=False)[-1]
    study._storage.set_trial_state_values(waiting._trial_id, running.state)
    study._storage.set_trial_user_attr(waiting._trial_id, attrs.DRIVER, other)
    status = read_status(study, now=NOW)
    assert len(status.active) == 2 and status.timeout_in is None and not status.by_timeout


def test_the_progress_bar_shows_the_timeout_where_it_comes_first() -> None:
    console, out = _terminal()
    clock = Clock()
    display = Display(console=console, clock=clock, timeout=2400.0)
    display.start(total=100, done=40, zombies=[])
    for done in (41, 42, 43):
        clock.now += 600.0
        display.update(done=done, running=4, best=0.5)
    display.stop()
    # 57 left at 600 s a trial: 9.5 h; the timeout comes in 10 min.
    assert "ETA 10 min 00 s (timeout)" in _last_line(out)

    console, out = _terminal()
    display = Display(console=console, clock=clock, timeout=86400.0)
    display.start(total=100, done=40, zombies=[])
    clock.now += 600.0
    display.update(done=41, running=4, best=0.5)
    display.stop()
    assert "ETA 9 h 50 min" in _last_line(out) and "timeout" not in _last_line(out)


def test_a_search_records_when_its_timeout_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    space = toy_space(trials=2)
    space["budget"] = {"trials": 2, "epochs": 2, "timeout": "10m"}
    before = time.time()
    run = supervisor.search(space, workers=1, progress="none", report=False)
    recorded = {
        k: v for k, v in run.study.user_attrs.items() if k.startswith(attrs.DEADLINE_PREFIX)
    }
    assert len(recorded) == 1
    assert before + 590 < next(iter(recorded.values())) < time.time() + 600


@pytest.mark.parametrize(
    ("limit", "shown"),
    [
        (-40.0, "not running: its last session stopped at its timeout (budget.timeout) with"),
        (+60.0, "not running (no RUNNING trial)"),  # Ctrl-C before its timeout
        (None, "not running (no RUNNING trial)"),  # no timeout
    ],
)
def test_a_campaign_its_timeout_ended_says_so(limit: float | None, shown: str) -> None:
    """Once the driver had gone, a campaign its timeout had ended read as one that had
    crashed or been stopped: "not running (no RUNNING trial)"."""
    study = _campaign(200)
    running = study.get_trials(deepcopy=False)[-1]
    study._storage.set_trial_user_attr(running._trial_id, attrs.FINISHED, NOW - 20)
    study.tell(running.number, 0.5)  # the last trial to end
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + DRIVER, None)  # the driver has ended
    if limit is not None:
        study.set_user_attr(attrs.DEADLINE_PREFIX + DRIVER, NOW - 20 + limit)
    text = _shown(study)
    assert shown in text, text
    if limit is not None and limit < 0:
        assert "99 trials left; `supervisor search` continues it" in text
