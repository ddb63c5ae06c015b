"""What a resumed search says first of its budget."""

from __future__ import annotations

import pytest

from supervisor.commands.progress import Display


def test_a_resume_says_the_trials_left_and_when_none_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A resume of a run whose budget was spent said "Resuming: 7 of 5 trials already
    finished", then stopped: nothing said that nothing would run, nor how to go on."""
    Display(force_plain=True).start(total=7, done=5, zombies=[])
    assert capsys.readouterr().out == "Resuming: 5 of 7 trials finished already, 2 to run\n"
    Display(force_plain=True).start(total=5, done=7, zombies=[])
    assert capsys.readouterr().out == (
        "Resuming: 7 trials finished already, the budget is 5: none to run (raise"
        " budget.trials or --trials to search on)\n"
    )
    Display(force_plain=True).start(total=5, done=0, zombies=[])
    assert capsys.readouterr().out == ""
