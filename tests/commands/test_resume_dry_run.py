"""``validate``, ``search --dry-run`` and ``submit --dry-run`` of a run that exists say what
its resume would run: the trials its budget still needs, and the ``enqueue:`` entries its
study does not hold yet."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

import supervisor.rundir as rundir
from supervisor.cli import app
from supervisor.study import attrs
from tests.test_api import toy_space


def _run_with(tmp_path: Path, finished: list[float], trials: int) -> None:
    """``toy.yaml`` of ``trials`` and a run ``toy`` whose study holds ``finished`` trials
    (and an infrastructure failure, which a resume runs again: it counts for nothing)."""
    import optuna

    from supervisor.study.storage import open_storage

    space = toy_space(study="toy", trials=trials) | {"enqueue": [{"x": 1.0}, {"x": 2.0}]}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(space))
    run_dir = tmp_path / "runs" / "toy"
    run_dir.mkdir(parents=True)
    storage = open_storage(rundir.journal_url(run_dir))
    study = optuna.create_study(study_name="toy", storage=storage)
    x = {"x": FloatDistribution(-4, 4)}
    for value in finished:
        study.add_trial(create_trial(params={"x": value}, distributions=x, value=value**2))
    lost = {attrs.FAILURE: "infrastructure"}
    study.add_trial(
        create_trial(params={"x": 3.0}, distributions=x, state=TrialState.FAIL, user_attrs=lost)
    )


def _shown(tmp_path: Path, *argv: str) -> list[str]:
    result = CliRunner().invoke(app, list(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def _line(lines: list[str], head: str) -> str:
    return next(line for line in lines if line.startswith(head))


def test_a_dry_run_of_a_resume_says_the_trials_it_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 of 7 finished: it said "would run 7 trials", and both enqueued configurations
    "trained first" though the study held one of them (a resume queues only the other)."""
    monkeypatch.chdir(tmp_path)
    _run_with(tmp_path, [1.0, -1.0, 0.5, 2.5, -3.0], trials=7)
    for argv in (["validate", "toy.yaml"], ["search", "toy.yaml", "--dry-run"]):
        lines = _shown(tmp_path, *argv)
        assert _line(lines, "would run").startswith("would run   2 of 7 trials on a local Dask")
        assert _line(lines, "would run").endswith("; 5 finished already")
        assert _line(lines, "enqueue") == (
            "enqueue     2 configuration(s): 1 trained first; 1 in the study already,"
            " not queued again"
        )
    submit = ["submit", "toy.yaml", "--launcher", "slurm", "--dry-run", "--", "--trials", "9"]
    assert "would run   4 of 9 trials on the cluster of launcher slurm; 5 finished already" in (
        _shown(tmp_path, *submit)
    )
    # A new study of the same space: the whole budget, every configuration first.
    lines = _shown(tmp_path, "search", "toy.yaml", "--study", "fresh", "--dry-run")
    assert _line(lines, "would run").startswith("would run   7 trials on a local Dask cluster")
    assert _line(lines, "enqueue") == "enqueue     2 configuration(s): 2 trained first"


def test_a_dry_run_of_a_run_whose_budget_is_spent_says_nothing_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _run_with(tmp_path, [1.0, 2.0, 0.5, 2.5, -3.0], trials=4)
    lines = _shown(tmp_path, "search", "toy.yaml", "--dry-run")
    assert _line(lines, "would run").startswith("would run   no trial on a local Dask cluster")
    assert _line(lines, "would run").endswith(
        "; 5 of 4 finished already: raise budget.trials or --trials to search on"
    )
    assert _line(lines, "enqueue") == (
        "enqueue     2 configuration(s): 2 in the study already, not queued again"
    )


def test_a_dry_run_with_a_storage_that_holds_the_study_says_it_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--storage`` the storage line never said the search resumes, however many of
    the study's trials the storage held."""
    import optuna

    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(toy_space(study="toy", trials=7)))
    study = optuna.create_study(study_name="toy", storage="sqlite:///s.db")
    x = {"x": FloatDistribution(-4, 4)}
    for value in (1.0, 2.0, 3.0):
        study.add_trial(create_trial(params={"x": value}, distributions=x, value=value))
    lines = _shown(tmp_path, "search", "toy.yaml", "--storage", "sqlite:///s.db", "--dry-run")
    assert _line(lines, "storage") == "storage     sqlite:///s.db (exists: the search resumes)"
    assert _line(lines, "would run").startswith("would run   4 of 7 trials on a local Dask")


def test_a_dry_run_of_a_resume_that_trains_otherwise_says_what_the_search_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search notes a resume with other epochs than the study's trials were trained
    with (their values do not compare); its dry run and ``validate`` said nothing of it."""
    import optuna

    from supervisor.config import space
    from supervisor.study.storage import open_storage

    monkeypatch.chdir(tmp_path)
    _run_with(tmp_path, [1.0, 2.0], trials=7)
    storage = open_storage(rundir.journal_url(tmp_path / "runs" / "toy"))
    study = optuna.load_study(study_name="toy", storage=storage)
    study.set_user_attr(attrs.CONFIG, space.load("toy.yaml").to_dict())  # as a start stores it
    note = "note: this run trains otherwise than the study's earlier trials (trained 2 epochs,"
    assert not any(
        line.startswith(note) for line in _shown(tmp_path, "search", "toy.yaml", "--dry-run")
    )
    shown = _shown(tmp_path, "search", "toy.yaml", "--epochs", "5", "--dry-run")
    assert any(line.startswith(f"{note} this run 5)") for line in shown), shown


def test_validate_names_the_storage_the_run_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``validate`` reads the study where the run records it (a database), but said
    "storage journal:runs/toy/journal.log (exists: the search resumes)", a file that is
    not there."""
    import optuna

    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(toy_space(study="toy", trials=7)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="toy", storage=url)
    x = {"x": FloatDistribution(-4, 4)}
    study.add_trial(create_trial(params={"x": 1.0}, distributions=x, value=1.0))
    (tmp_path / "runs" / "toy").mkdir(parents=True)
    rundir.write_record(tmp_path / "runs" / "toy", rundir.RunRecord("toy", url, "toy.yaml", "x"))
    lines = _shown(tmp_path, "validate", "toy.yaml")
    assert _line(lines, "storage") == f"storage     {url} (exists: the search resumes)"
    assert _line(lines, "would run").startswith("would run   6 of 7 trials")
