"""Kept models at scale: what `status`, the report and a resume look up on disk grows with
the K models kept, not with the trials of the campaign. On a parallel file system
(Lustre, GPFS) each stat is a round trip to a metadata server shared by every user: a
campaign of 100,000 trials whose benchmark keeps artifacts has 100,000 trial folders,
and every look of `status --watch` stat'ed each of them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

import supervisor.rundir as rundir
from supervisor.commands.status import print_status
from supervisor.report.search import render_search_report as render
from supervisor.study import attrs
from supervisor.study.kept_models import KeptModels, kept_in, saved_models

TRIALS = 300
KEEP = 3


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """The paths under ``tmp_path/trials`` stat'ed (``os.stat``: exists, is_file)."""
    seen: list[str] = []
    real = os.stat
    trials = str(tmp_path / rundir.TRIALS_DIR)

    def counting(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).startswith(trials):
            seen.append(str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", counting)
    yield seen


def _save(run_dir: Path, number: int, name: str = rundir.MODEL_FILE) -> None:
    path = rundir.trial_dir(run_dir, number) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, w=np.zeros(2))


def _campaign(run_dir: Path, directions: list[str], every_one_saved: bool) -> optuna.Study:
    """``TRIALS`` complete trials, each with its artifacts' folder; the K best with their
    models. ``every_one_saved``: every trial recorded a saved model (several objectives:
    no bar, the driver trimmed them as better ones came), else only those."""
    study = optuna.create_study(directions=directions)  # type: ignore[arg-type]
    study.set_user_attr(attrs.CONFIG, {"keep_models": KEEP})
    rng = np.random.default_rng(0)
    best = set(range(TRIALS - KEEP, TRIALS))  # the last ones are the best
    for number in range(TRIALS):
        good = number in best
        values = [float(rng.uniform(1, 2)) - (5 if good else 0) for _ in directions]
        saved = every_one_saved or good
        user = {attrs.MODEL: f"trials/{number:06d}/model.npz"} if saved else {}
        study.add_trial(create_trial(values=values, user_attrs=user))
        _save(run_dir, number, rundir.ARTIFACTS_FILE)
        if good:
            _save(run_dir, number)
    return study


@pytest.mark.parametrize("directions", [["minimize"], ["minimize", "minimize"]])
def test_status_and_the_report_stat_the_kept_models_not_every_trial_folder(
    tmp_path: Path, stats: list[str], directions: list[str]
) -> None:
    from rich.console import Console

    study = _campaign(tmp_path, directions, every_one_saved=len(directions) > 1)
    console = Console(width=200, record=True)
    print_status(study, console, run_dir=tmp_path)
    kept = sorted(range(TRIALS - KEEP, TRIALS))
    assert sorted(kept_in(study, tmp_path)) == kept
    assert "models kept: trials" in console.export_text()
    page = render(study, run_dir=tmp_path)
    shown = re.search(r"models kept</th><td>trials ([\d, ]+), best first", page)
    assert shown is not None and sorted(map(int, shown[1].split(", "))) == kept
    # Before: each of the three looks stat'ed every folder's model.npz (300 each).
    assert len(stats) <= 5 * KEEP, f"{len(stats)} stats of trial folders"


def test_a_resume_looks_only_where_a_model_can_be(tmp_path: Path, stats: list[str]) -> None:
    """Folders of trials that completed without saving a model (their artifacts only) are
    not looked into; those of trials that did not complete still are, as their files go."""
    study = _campaign(tmp_path, ["minimize"], every_one_saved=False)
    study.add_trial(create_trial(state=TrialState.FAIL))  # killed after saving its model
    _save(tmp_path, TRIALS)
    kept = KeptModels(tmp_path, KEEP - 1, ["minimize"])
    assert kept.load(study) == []
    assert len(stats) <= 5 * KEEP, f"{len(stats)} stats of trial folders"  # before: 301
    assert sorted(kept.numbers()) == list(range(TRIALS - KEEP + 1, TRIALS))
    # the lost attempt's file and the surplus (one kept fewer now) are gone
    assert saved_models(tmp_path) == sorted(kept.numbers())


def test_status_ranks_the_models_found_not_every_complete_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several objectives, ranking every trial that recorded a saved model at once
    takes memory quadratic in them (a campaign that saved each trial's model: 100,000
    trials, 10^10 comparisons); the fronts are peeled as far as the K kept."""
    import supervisor.study.kept_models as kept_models

    study = _campaign(tmp_path, ["minimize", "minimize"], every_one_saved=True)
    rows: list[int] = []
    real = kept_models.pareto_ranks

    def counting(losses: np.ndarray) -> np.ndarray:
        rows.append(len(losses))
        return real(losses)

    monkeypatch.setattr(kept_models, "pareto_ranks", counting)
    assert sorted(kept_in(study, tmp_path)) == list(range(TRIALS - KEEP, TRIALS))
    assert max(rows) <= KEEP  # the files found only, not the 300 candidates
