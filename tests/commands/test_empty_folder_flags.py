"""An empty folder flag (``--runs-dir "$RUNS"`` with the variable unset) is refused in one
line: click turned ``''`` into the current directory, and a search wrote its run there."""

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


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "toy.yaml", "--runs-dir", "", "--workers", "1"],
        ["search", "toy.yaml", "--reports-dir=", "--dry-run"],
        ["validate", "toy.yaml", "--runs-dir", " "],
        ["status", "toy", "--runs-dir", ""],
        ["ensemble", "toy", "--reports-dir", ""],
        ["submit", "toy.yaml", "--launcher", "slurm", "--runs-dir", "", "--dry-run"],
    ],
)
def test_an_empty_folder_flag_is_refused(
    argv: list[str],
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(monkeypatch, capsys, work, *argv)
    flag = next(a.rstrip("=") for a in argv if a.endswith("-dir") or a.endswith("-dir="))
    assert f"{flag} " in err and ": expected a folder (. for this one)" in err
