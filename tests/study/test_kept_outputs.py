"""A campaign with an ``ensemble:`` section keeps the ensemble predictions (``outputs.npz``)
of the trials its ensemble step can use, not of every trial
(``supervisor.study.kept_artifacts``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import yaml

import supervisor.rundir as rundir
from supervisor.config import space
from supervisor.ensemble import members
from supervisor.execution.trial import TrialResult
from supervisor.study import attrs
from supervisor.study.events import Silent
from supervisor.study.recorder import Recorder

TOY = "tests.toy_classifier:ToyClassifier"


def _exp(tmp_path: Path) -> space.Experiment:
    path = tmp_path / "toy.yaml"
    body = {
        "study": "toy",
        "benchmark": {"name": TOY},
        "objectives": ["val_nll"],
        "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0}},
        "budget": {"trials": 9, "epochs": 1},
        # Keeps the best 3: the most of ``size``, ``pool`` and ``candidates``.
        "ensemble": {"select": "topk", "size": 2, "pool": 3},
    }
    path.write_text(yaml.safe_dump(body))
    return space.load(path)


def _finish(rec: Recorder, trial: optuna.Trial, run_dir: Path, value: float | None) -> None:
    """What the driver does with a trial that saved its predictions."""
    path = rundir.trial_dir(run_dir, trial.number) / rundir.OUTPUTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, val=np.full((2, 2), 0.5))
    relative = str(path.relative_to(run_dir))
    trial.set_user_attr(attrs.OUTPUTS, relative)
    status = "complete" if value is not None else "failed"
    values = [value] if value is not None else None
    result = TrialResult(trial.number, status, values, extra={"outputs": relative})
    rec.wrote(result)
    if value is not None:
        rec.complete(trial, [value], result)
    else:  # a NaN loss: failed by the model
        rec.fail(trial, "model", "NonFiniteObjective", "objective val_nll is nan")


def _kept(run_dir: Path) -> list[int]:
    folder = run_dir / rundir.TRIALS_DIR
    return sorted(int(p.parent.name) for p in folder.glob(f"*/{rundir.OUTPUTS_FILE}"))


def test_only_the_trials_an_ensemble_can_use_keep_their_predictions(tmp_path: Path) -> None:
    """Every trial kept its ``outputs.npz`` (100,000 trials: 100,000 files), though the
    ensemble takes its members from the best few; one whose file is gone is trained."""
    exp = _exp(tmp_path)
    study = optuna.create_study(study_name="toy", direction="minimize")
    rec = Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3)
    for value in (0.9, 0.4, None, 0.7, 0.2, 0.8):
        _finish(rec, study.ask(), tmp_path, value)
    best = [t.number for t in members.ranked(study, maximize=False)]
    assert best == [4, 1, 3, 5, 0]
    assert _kept(tmp_path) == sorted(best[:3])
    assert not rundir.trial_dir(tmp_path, 2).exists()  # the failed one's folder went too

    # A resume ranks what the first run kept: a better trial pushes the worst out.
    again = Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3)
    _finish(again, study.ask(), tmp_path, 0.3)
    assert _kept(tmp_path) == [1, 4, 6]

    # ``supervisor ensemble --pool 5`` later: the trials whose files went are found
    # missing, and trained again (``build`` counts them as trained).
    source = members.MemberSource(exp, study, tmp_path)
    found = {
        t.number: source.find(members.Wanted(t.number, members.search_seed(exp, t)), None)
        for t in members.ranked(study, maximize=False)[:5]
    }
    assert sorted(n for n, m in found.items() if m is not None) == [1, 4, 6]
    assert sorted(n for n, m in found.items() if m is None) == [3, 5]


def test_members_trained_for_the_ensemble_keep_theirs(tmp_path: Path) -> None:
    """The member study's driver trains only members the ensemble wants: each keeps its
    predictions, however many and whatever they score."""
    exp = _exp(tmp_path)
    study = optuna.create_study(study_name="toy.ensemble", direction="minimize")
    rec = Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3)
    for source, value in enumerate((0.9, 0.4, 0.7, 0.2, 0.8)):
        trial = study.ask()
        trial.set_user_attr(attrs.MEMBER_OF, source)
        _finish(rec, trial, tmp_path, value)
    assert _kept(tmp_path) == [0, 1, 2, 3, 4]


def test_a_trial_whose_result_was_lost_after_it_saved_its_arrays_leaves_no_file(
    tmp_path: Path,
) -> None:
    """Its worker died after saving its predictions and artifacts (or the campaign was
    stopped before its result was read): it runs again under a new number, and the lost
    attempt's files, which nothing ranks or reads, stayed for good (its model went)."""
    exp = _exp(tmp_path)
    study = optuna.create_study(study_name="toy", direction="minimize")
    rec = Recorder(exp, study, Silent(), str(tmp_path), max_attempts=3)
    lost, stopped, queued = study.ask(), study.ask(), study.ask()
    for trial in (lost, stopped):
        folder = rundir.trial_dir(tmp_path, trial.number)
        folder.mkdir(parents=True)
        np.savez(folder / rundir.OUTPUTS_FILE, val=np.zeros(2))
        np.savez(folder / rundir.ARTIFACTS_FILE, confusion=np.eye(2))
    # Killed while it wrote its predictions: the partial file, as large as they are.
    (rundir.trial_dir(tmp_path, stopped.number) / ".outputs.42.0a1b.tmp.npz").write_bytes(b"")
    rec.worker_lost(lost, "KilledWorker", "its worker died", started=True)
    rec.interrupted(stopped, "Interrupted", "stopped by the user (Ctrl-C)")
    rec.worker_lost(queued, "KilledWorker", "its worker died", started=False)
    assert list((tmp_path / rundir.TRIALS_DIR).iterdir()) == []
