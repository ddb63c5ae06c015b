"""A kept model file damaged on disk (cut short by a node's crash, emptied): a resume
removes it with a line saying so, and a later trial's model takes its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

import supervisor
import supervisor.rundir as rundir
from supervisor.study.kept_models import KeptModels, saved_models
from tests.study.test_kept_models import kept_space

SAVED = {"model": "trials/.../model.npz"}  # what the driver records of a saved model


def _model(run_dir: Path, number: int) -> Path:
    path = rundir.trial_dir(run_dir, number) / rundir.MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, w=np.zeros(64))
    return path


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_resume_removes_damaged_kept_models_and_keeps_room_for_new_ones(
    tmp_path: Path,
) -> None:
    study = optuna.create_study(direction="minimize")
    for value in (1.0, 2.0, 3.0):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=SAVED))
    paths = [_model(tmp_path, n) for n in range(3)]
    _cut(paths[0])  # the best, cut short
    paths[1].write_bytes(b"")  # emptied
    kept = KeptModels(tmp_path, 3, ["minimize"])
    notes = kept.load(study)
    assert kept.numbers() == [2]
    assert saved_models(tmp_path) == [2]
    assert not rundir.trial_dir(tmp_path, 0).exists()
    assert len(notes) == 2
    assert notes[0].startswith(f"kept model of trial 0 damaged ({paths[0]}: ")
    assert notes[0].endswith("removed, a later trial's takes its place")
    assert "trial 1 damaged" in notes[1]
    assert kept.next_trial().bar is None  # two places free: any complete trial saves


def test_a_kept_model_the_file_system_cannot_read_is_not_counted_nor_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    study = optuna.create_study(direction="minimize")
    for value in (1.0, 2.0):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=SAVED))
    for number in range(2):
        _model(tmp_path, number)
    real = zipfile.ZipFile
    sick = rundir.trial_dir(tmp_path, 0) / rundir.MODEL_FILE

    def flaky(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == sick:
            raise OSError(5, "Input/output error")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", flaky)
    kept = KeptModels(tmp_path, 2, ["minimize"])
    notes = kept.load(study)
    assert kept.numbers() == [1]
    assert saved_models(tmp_path) == [0, 1]  # it may be sound: a later start checks it
    assert notes == [
        f"kept model of trial 0 unreadable, not counted: {sick}: [Errno 5] Input/output error"
    ]


def test_a_campaign_resumed_after_a_crash_cut_its_best_model_keeps_k_usable_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run = supervisor.search(kept_space("damaged", 3, 2), workers=1, report=False, progress="plain")
    best = run.kept_models[0]
    path = rundir.trial_dir(run.run_dir, best) / rundir.MODEL_FILE
    _cut(path)
    with pytest.raises(supervisor.UserError, match=rf"^{path}: cannot load trial {best}'s"):
        run.model(best)  # names the file and why, in one line
    capsys.readouterr()
    run = supervisor.search(kept_space("damaged", 6, 2), workers=1, report=False, progress="plain")
    shown = f"kept model of trial {best} damaged ({path.resolve()}: File is not a zip file)"
    assert shown in capsys.readouterr().out
    assert best not in run.kept_models and len(run.kept_models) == 2
    for number in run.kept_models:
        run.model(number)  # every kept model loads
