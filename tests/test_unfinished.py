"""Which trials finished since the last look (``supervisor.unfinished``): read off the
campaign journal's log, it gives exactly what re-checking every unfinished trial gives,
also with a second process finishing trials and with the log read after the list."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from supervisor.study import attrs
from supervisor.study.index import StudyIndex
from supervisor.study.storage import open_storage
from supervisor.unfinished import Unfinished

X = {"x": FloatDistribution(-4, 4)}


def test_the_journal_log_gives_what_a_scan_of_the_unfinished_gives(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    other = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    noise = optuna.create_study(study_name="n", storage=study._storage)  # another study
    fed, scanned = Unfinished(), Unfinished()
    rng = random.Random(3)
    running: list[optuna.Trial] = []
    all_done: list[int] = []
    for _ in range(200):
        writer = rng.choice([study, other, noise])
        action = rng.random()
        if action < 0.1:
            writer.enqueue_trial({"x": 1.0})
        elif action < 0.2:  # created finished (as warm start and add_trials do)
            writer.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=0.5))
        elif action < 0.6 or not running:
            running.append(writer.ask(X))
        else:
            trial = running.pop(rng.randrange(len(running)))
            state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
            value = trial.params["x"] if state == TrialState.COMPLETE else None
            trial.study.tell(trial, value, state=state)
        trials = study.get_trials(deepcopy=False)
        got = fed.finished(trials, study)
        assert got == scanned.finished(trials, None)
        assert fed.open == scanned.open == {t.number for t in trials if not t.state.is_finished()}
        all_done += got
    assert sorted(all_done) == [t.number for t in study.trials if t.state.is_finished()]
    assert fed._cursor > 0  # the log was read, not the fallback


def test_a_trial_the_log_names_before_the_list_shows_it_is_found_next_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    trial = study.ask(X)
    old = study.get_trials(deepcopy=False)  # read before the trial finished
    study.tell(trial, 1.0)
    unfinished = Unfinished()
    assert unfinished.finished(old, study) == [] and unfinished.open == {0}
    late = study.ask(X)  # created and finished after a list was read
    listed = study.get_trials(deepcopy=False)
    study.tell(late, 2.0)
    assert unfinished.finished(listed, study) == [0]
    assert unfinished.finished(study.get_trials(deepcopy=False), study) == [1]
    assert unfinished.open == set()


def test_the_index_counts_running_and_other_drivers_configurations(tmp_path: Path) -> None:
    """The budget tally, the RUNNING count (queued trials are not running) and the
    configurations other drivers train, from the log and the few unfinished it checks."""
    path = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    index = StudyIndex("me")
    mine = study.ask(X)
    mine.set_user_attr(attrs.DRIVER, "me")
    theirs = study.ask(X)
    theirs.set_user_attr(attrs.DRIVER, "them")
    study.enqueue_trial({"x": 3.0})
    index.update(study.get_trials(deepcopy=False), study)
    assert index.running() == 2 and index.finished == 0
    assert list(index.elsewhere.values()) == [theirs.number]
    assert index.foreign == {theirs.number, 2}  # its own left; the queued one is unknown
    study.tell(theirs, 1.0)
    queued = study.ask(X)  # the queued trial starts
    queued.set_user_attr(attrs.DRIVER, "me")
    index.update(study.get_trials(deepcopy=False), study)
    assert index.running() == 2 and index.finished == 1 and index.elsewhere == {}
    assert index.foreign == set()
    assert index.completed[next(iter(index.completed))] == (theirs.number, [1.0])
