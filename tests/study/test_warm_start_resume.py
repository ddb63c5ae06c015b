"""Warm start resumed: each source trial told exactly once, whenever the import was
killed and however the source run is named again (study name, relative or absolute path)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, create_trial

import supervisor.rundir as rundir
from supervisor.config import space
from supervisor.config.warm_start import WarmSource
from supervisor.study import attrs, warm_start
from supervisor.study.storage import open_storage
from tests import faultkit
from tests.faultkit import together

SOURCE_TRIALS = 12


class Killed(BaseException):
    """kill -9 in the middle of the import: nothing after it runs."""


def _source_run(runs_root: Path, name: str, trials: int = SOURCE_TRIALS) -> Path:
    """A finished run of the toy benchmark under ``runs_root``, all its trials in range."""
    run_dir = runs_root / name
    run_dir.mkdir(parents=True)
    study = optuna.create_study(study_name=name, storage=open_storage(rundir.journal_url(run_dir)))
    study.set_user_attr(attrs.BENCHMARK, faultkit.TOY)
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    for i in range(trials):
        x = -4 + 4 * i / trials
        study.add_trial(
            create_trial(
                params={"x": x},
                distributions=dist,
                value=x * x,
                user_attrs={attrs.METRICS: {"loss": x * x}},
            )
        )
    rundir.write_record(run_dir, rundir.RunRecord(name, None, "space.yaml", "supervisor search"))
    return run_dir


def _plan(tmp_path: Path, *runs: str) -> list[warm_start.Source]:
    path = tmp_path / "new.yaml"
    path.write_text(
        f'study: new\nbenchmark: {{name: "{faultkit.TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 0}\nbudget: {trials: 3}\n"
    )
    exp = dataclasses.replace(space.load(path), warm_start=tuple(WarmSource(r) for r in runs))
    runs_root = tmp_path / "runs"
    return warm_start.plan(exp, runs_root, runs_root / "new")


def _warm(study: optuna.Study) -> list[str]:
    return [
        t.user_attrs[attrs.WARM_START]
        for t in study.get_trials()
        if attrs.WARM_START in t.user_attrs
    ]


def _cut_short(study: optuna.Study, monkeypatch: pytest.MonkeyPatch, keep: int) -> None:
    """The next ``add_trials`` writes ``keep`` trials, then the process dies."""
    add = study.add_trials

    def killed_midway(trials: Iterable[FrozenTrial]) -> None:
        add(list(trials)[:keep])
        raise Killed

    monkeypatch.setattr(study, "add_trials", killed_midway)


@pytest.mark.parametrize("keep", [0, 1, 7, SOURCE_TRIALS])
def test_an_import_killed_at_any_trial_is_finished_by_the_resume_each_trial_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int
) -> None:
    _source_run(tmp_path / "runs", "old")
    study = optuna.create_study()
    with monkeypatch.context() as patch:
        _cut_short(study, patch, keep)
        with pytest.raises(Killed):
            warm_start.apply(study, _plan(tmp_path, "old"))
    assert len(_warm(study)) == keep

    assert warm_start.apply(study, _plan(tmp_path, "old")) == SOURCE_TRIALS - keep
    marks = _warm(study)
    assert sorted(marks) == sorted(f"old#{n}" for n in range(SOURCE_TRIALS)), "each once"
    assert warm_start.apply(study, _plan(tmp_path, "old")) == 0, "and not again"
    assert len(_warm(study)) == SOURCE_TRIALS


def test_the_same_run_named_another_way_is_not_imported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _source_run(tmp_path / "runs", "w0", 8)
    monkeypatch.chdir(tmp_path)
    study = optuna.create_study()
    assert warm_start.apply(study, _plan(tmp_path, "w0")) == 8
    for again in ("runs/w0", "runs/w0/", str(run_dir.resolve()), "./runs/../runs/w0"):
        assert warm_start.apply(study, _plan(tmp_path, again)) == 0, again
    assert len(_warm(study)) == 8
    (only,) = _plan(tmp_path, "w0", "runs/w0")
    assert only.label == "w0", "one run listed under two names is read once"


def test_a_resume_of_a_run_imported_before_sources_were_resolved_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs started before: IMPORTED held the label as typed, and a trial count."""
    _source_run(tmp_path / "runs", "w0", 8)
    monkeypatch.chdir(tmp_path)
    (source,) = _plan(tmp_path, "w0")
    study = optuna.create_study()
    study.add_trials(source.trials)
    study.set_user_attr(warm_start.IMPORTED, {"w0": 8})
    assert warm_start.apply(study, _plan(tmp_path, "runs/w0")) == 0
    assert warm_start.apply(study, _plan(tmp_path, "w0")) == 0
    assert len(_warm(study)) == 8

    killed = optuna.create_study()  # killed there before IMPORTED was written
    killed.add_trials(source.trials[:5])
    assert warm_start.apply(killed, _plan(tmp_path, "runs/w0")) == 3
    assert sorted(_warm(killed)) == sorted(f"w0#{n}" for n in range(8))


def test_two_runs_of_one_name_in_different_folders_are_both_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _source_run(tmp_path / "runs", "old", 4)
    _source_run(tmp_path / "elsewhere", "old", 6)
    monkeypatch.chdir(tmp_path)
    study = optuna.create_study()
    assert warm_start.apply(study, _plan(tmp_path, "old", "elsewhere/old")) == 10
    assert warm_start.apply(study, _plan(tmp_path, "elsewhere/old", "old")) == 0
    marks = _warm(study)
    assert len(marks) == len(set(marks)) == 10, "each trial's mark names its run"


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_drivers_starting_one_warm_start_together_add_each_trial_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Two ``supervisor search`` of one space file with ``warm_start:``, started together
    on one storage: each read the study before the other wrote, and both added every
    trial of the source (each twice in the study, the sampler's history doubled)."""
    folder = tmp_path / "runs" / "new"
    folder.mkdir(parents=True)
    url = f"journal:{folder / 'journal.log'}" if kind == "journal" else f"sqlite:///{folder}/s.db"
    race_two_warm_starts(tmp_path, monkeypatch, url)


def race_two_warm_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Two drivers apply one warm start to study ``new`` of ``url`` at once, each slowed
    between reading what is there and adding the rest: each source trial is added once."""
    import time

    _source_run(tmp_path / "runs", "old")
    sources = _plan(tmp_path, "old")
    optuna.create_study(study_name="new", storage=open_storage(url))
    marked = warm_start._marked

    def slow(trials: list[FrozenTrial], name: str) -> list[FrozenTrial]:
        time.sleep(0.5)  # between reading what is there and adding the rest
        return marked(trials, name)

    monkeypatch.setattr(warm_start, "_marked", slow)

    def start() -> int:
        study = optuna.load_study(study_name="new", storage=open_storage(url))
        return warm_start.apply(study, sources)

    added = together(start)
    assert sorted(added) == [0, SOURCE_TRIALS]
    study = optuna.load_study(study_name="new", storage=open_storage(url))
    assert sorted(_warm(study)) == sorted(f"old#{n}" for n in range(SOURCE_TRIALS))
