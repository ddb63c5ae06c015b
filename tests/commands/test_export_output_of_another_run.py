"""Where ``report -o`` and ``export -o`` may write: never over a file of a run directory
(this run's or another's) but the outputs commands rewrite there, nor over a storage or
space file a run beside it names; an output that names no file (``''``, ``/``) and a
manifest that is no file are refused in one line, exit 2, with every file left as it was."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

import supervisor.rundir as rundir
from supervisor.study.storage import open_storage
from tests.commands.test_hostile_cli import TEMPLATE_FILES
from tests.study.test_storage_read_only import refused, supervisor_cli


def make_run(work: Path, name: str, storage: str | None = None) -> Path:
    """A run of one complete trial, as a search leaves it (no cluster needed)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_dir = work / "runs" / name
    run_dir.mkdir(parents=True)
    url = storage or rundir.journal_url(run_dir)
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    dist = {"x": FloatDistribution(-4, 4)}
    study.add_trial(create_trial(params={"x": 1.0}, distributions=dist, value=1.0))
    record = rundir.RunRecord(name, storage, f"{name}.yaml", f"supervisor search {name}.yaml")
    rundir.write_record(run_dir, record)
    (work / f"{name}.yaml").write_text(TEMPLATE_FILES["toy.yaml"])
    return run_dir


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")
    make_run(tmp_path, "other")
    make_run(tmp_path, "lite", storage="sqlite:///lite.db")
    return tmp_path


@pytest.mark.parametrize("command", ["report", "export"])
@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("runs/other/journal.log", "would overwrite a file of run runs/other (journal.log)"),
        ("runs/other/run.json", "would overwrite a file of run runs/other (run.json)"),
        ("runs/other/manifest.json", "would overwrite a file of run runs/other"),
        ("lite.db", "would overwrite a file of run runs/lite (lite.db)"),
        ("other.yaml", "would overwrite a file of run runs/other (other.yaml)"),
        ("runs/toy/journal.log", "would overwrite a file of the run (journal.log)"),
    ],
)
def test_an_output_never_replaces_a_file_of_another_run(
    command: str,
    target: str,
    words: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = work / "runs" / "other" / "manifest.json"
    manifest.write_text('{"sessions": []}\n')
    err = refused(monkeypatch, capsys, work, command, "toy", "-o", target)
    assert f"--output {target}: {words}" in err


def test_a_copied_run_folder_is_a_run_too(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run directory found by its record, wherever it lies (not under the runs folder)."""
    (work / "backup").mkdir()
    make_run(work / "backup", "old")
    err = refused(monkeypatch, capsys, work, "report", "toy", "-o", "backup/runs/old/journal.log")
    assert "would overwrite a file of run backup/runs/old (journal.log)" in err


def test_outputs_commands_rewrite_are_still_written(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert supervisor_cli(monkeypatch, "export", "toy") == 0
    assert supervisor_cli(monkeypatch, "export", "toy") == 0  # its own trials.csv again
    assert supervisor_cli(monkeypatch, "export", "other", "-o", "runs/other/trials.csv") == 0
    assert supervisor_cli(monkeypatch, "report", "toy", "-o", "runs/other/toy.html") == 0
    assert (work / "runs" / "toy" / "trials.csv").is_file()
    assert (work / "runs" / "other" / "toy.html").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("output", ["", "/"])
def test_an_output_that_names_no_file_is_refused_in_one_line(
    output: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("export", "report"):
        err = refused(monkeypatch, capsys, work, command, "toy", "-o", output)
        assert "is a directory; give a file name" in err


def test_a_manifest_that_is_a_directory_is_refused_like_one_that_is_not_json(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = work / "runs" / "toy" / "manifest.json"
    manifest.write_text("not json\n")
    assert "not a readable manifest" in refused(monkeypatch, capsys, work, "export", "toy")
    manifest.unlink()
    manifest.mkdir()
    err = refused(monkeypatch, capsys, work, "export", "toy")
    assert "runs/toy/manifest.json: not a readable manifest" in err
