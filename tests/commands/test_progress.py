"""The progress line of a campaign on a terminal: what a user reads while it runs."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from supervisor.commands.progress import Display


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _terminal(width: int = 120) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None), out


def _last_line(out: io.StringIO) -> str:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return [line for line in re.split(r"[\r\n]", text) if line.strip()][-1]


def test_the_eta_of_trials_minutes_apart_is_their_pace() -> None:
    """Trials finishing 10 min apart: the ETA is the trials left at that pace, and it
    grows while none finishes. Rich's own ETA only looked at the last 30 s of finishes,
    and showed -:--:-- through a whole campaign of trials longer than that."""
    console, out = _terminal()
    clock = Clock()
    display = Display(console=console, clock=clock)
    display.start(total=100, done=40, zombies=[])  # a resumed campaign: 60 left
    for done in (41, 42, 43):
        clock.now += 600.0
        display.update(done=done, running=4, best=0.5)
    clock.now += 300.0  # half way to the next finish
    display.update(done=43, running=4, best=0.5)
    display.stop()
    # 3 finishes in 2,100 s since the session started: 700 s a trial, 57 left.
    assert "ETA 11 h 05 min" in _last_line(out)


def test_the_count_stays_whole_on_an_80_column_terminal() -> None:
    """A big campaign on a common 80-column terminal: the bar gives way, not the count
    (it read 1300/50…) nor the ETA."""
    console, out = _terminal(80)
    clock = Clock()
    display = Display(console=console, clock=clock)
    display.start(total=5000, done=1200, zombies=[])
    clock.now += 600.0
    display.update(done=1300, running=2048, best=0.012345)
    display.stop()
    line = _last_line(out)
    assert "1300/5000" in line and "running 2048" in line and "ETA 6 h 10 min" in line, line


def test_a_batch_log_says_how_far_the_campaign_is_every_10_minutes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not a terminal (a batch job's log): the trial lines never said how many of the
    budget were done nor the ETA. A progress line says it every 10 min while trials
    finish, none while nothing does."""
    clock = Clock()
    display = Display(force_plain=True, clock=clock)
    display.start(total=100, done=0, zombies=[])
    for minute in range(1, 61):  # a trial a minute for 30 min, then nothing for 30
        clock.now += 60.0
        display.update(done=min(minute, 30), running=4, best=0.25)
    display.stop()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress")]
    assert lines == [
        f"progress: {done}/100 running 4  failed 0  best 0.25  0:{done:02d}:00  ETA {eta}"
        for done, eta in ((10, "1 h 30 min"), (20, "1 h 20 min"), (30, "1 h 10 min"))
    ]


@pytest.mark.parametrize("where", ["a trial's fill", "the proposer's start"])
def test_a_campaign_that_ends_in_an_error_gives_the_terminal_its_cursor_back(
    tmp_path: Path, threads_client: Any, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A storage gone for good (a database away past its reconnect wait) ends the search
    with an error: the bar stayed live, the error was drawn over by its redraws and the
    shell was left without a cursor. The driver stops its display whatever ends it."""
    import optuna

    from supervisor.config import space
    from supervisor.study.driver import Driver
    from supervisor.study.storage import StorageError

    path = tmp_path / "toy.yaml"
    path.write_text(
        'benchmark: {name: "tests.toy_benchmark:ToyBenchmark"}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 4, epochs: 1}\nsampler: random\nseed: 3\n"
    )
    exp = space.load(path)
    study = optuna.create_study(study_name=exp.study_name, direction="minimize")
    console, out = _terminal()
    display = Display(console=console)
    driver = Driver(exp, study, threads_client, slots=2, prefetch=0, display=display)

    def gone() -> int:
        raise StorageError("storage (database): the database did not answer for 120 s")

    if where == "a trial's fill":
        monkeypatch.setattr(driver, "_fill", gone)
    else:  # before the driver's loop: the bar was started, and never stopped
        monkeypatch.setattr("supervisor.study.driver.proposer", lambda *a: gone())
    with pytest.raises(StorageError):
        driver.run()
    shown = out.getvalue()
    assert "\x1b[?25l" not in shown or shown.endswith("\x1b[?25h")  # the cursor shown again


def test_a_trial_of_hours_reads_in_hours_in_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    from supervisor.execution.trial import TrialResult

    result = TrialResult(7, "complete", worker="tcp://node12:4000", started=100.0)
    result.finished = 100.0 + 5 * 3600 + 65  # it read "in 18065.0s"
    Display(force_plain=True).trial_done(7, "complete", [0.25], result)
    assert capsys.readouterr().out == "trial 7 complete: 0.25 in 5 h 01 min on tcp://node12:4000\n"
