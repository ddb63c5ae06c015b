"""``search --dry-run`` refuses the flags the search refuses: said "valid", then refused,
the dry run (and ``submit``, which checks its search flags with one) told nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run
from tests.study.test_storage_read_only import refused


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path, "toy")  # its space: toy.yaml
    return tmp_path


@pytest.mark.parametrize("scheduler", ["", "  "])
def test_an_empty_scheduler_is_refused_by_the_dry_run(
    scheduler: str, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--scheduler "$ADDR"`` with the variable unset: a local cluster, said the dry run.
    err = refused(monkeypatch, capsys, work, "search", "toy.yaml", "--scheduler", scheduler,
                  "--dry-run")  # fmt: skip
    assert f"--scheduler {scheduler!r}: expected an address such as tcp://host:8786" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--runs-dir", "toy.yaml"], "--runs-dir toy.yaml: toy.yaml is not a directory"),
        (["--reports-dir", "toy.yaml"], "--reports-dir toy.yaml: toy.yaml is not a directory"),
        (["--runs-dir", "no/runs"], "--runs-dir no/runs: no does not exist"),
    ],
)
def test_a_folder_the_search_cannot_use_is_refused_by_the_dry_run(
    argv: list[str],
    words: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert words in refused(monkeypatch, capsys, work, "search", "toy.yaml", *argv, "--dry-run")


@pytest.mark.parametrize("command", [["search", "toy.yaml", "--dry-run"], ["ensemble", "toy"]])
def test_workers_with_a_scheduler_are_refused(
    command: list[str],
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The scheduler's own workers ran the trials: --workers 4 was ignored in silence.
    argv = [*command, "--scheduler", "tcp://127.0.0.1:1", "--workers", "4"]
    err = refused(monkeypatch, capsys, work, *argv)
    assert "--workers 4: sizes a local cluster; with --scheduler the workers" in err


@pytest.mark.parametrize(
    ("storage", "words"),
    [
        ("sqlite:///nodir/x.db", "folder nodir does not exist"),
        ("journal:runs", "runs is a directory"),
        ("sqlite:///runs", "runs is a directory"),
    ],
)
def test_a_storage_file_the_search_cannot_make_is_refused_by_the_dry_run(
    storage: str,
    words: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["search", "toy.yaml", "--study", "new", "--storage", storage, "--dry-run"]
    assert f"--storage {storage!r}: {words}" in refused(monkeypatch, capsys, work, *argv)


def test_submit_refuses_an_empty_study_as_search_does(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--study "$STUDY"`` with the variable unset was dropped: the driver job would have
    # run (or resumed) the space file's own study.
    argv = ["submit", "toy.yaml", "--launcher", "slurm", "--study", "", "--dry-run"]
    assert "--study '': expected a name" in refused(monkeypatch, capsys, work, *argv)
