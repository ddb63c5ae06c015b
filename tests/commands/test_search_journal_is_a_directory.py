"""A run's default journal (``runs/<study>/journal.log``) that is a directory: every
command, ``search`` included, says so in one line and exits 2 before it starts a cluster
or writes anything (search used to fail half-way with a raw ``[Errno 21]``, exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands.test_export_output_of_another_run import make_run, refused

COMMANDS = {
    "search": ["search", "toy.yaml", "--workers", "1", "--dashboard", ":0", "--plain"],
    "search without a report": [
        *("search", "toy.yaml", "--workers", "1", "--dashboard", ":0", "--no-report"),
    ],
    "validate": ["validate", "toy.yaml"],
    "status": ["status", "toy"],
    "report": ["report", "toy"],
    "export": ["export", "toy"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_journal_that_is_a_directory_is_refused_in_one_line(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = make_run(tmp_path, "toy")
    (run_dir / "journal.log").unlink()
    (run_dir / "journal.log").mkdir()
    err = refused(monkeypatch, capsys, tmp_path, *COMMANDS[command])
    assert "runs/toy/journal.log: a directory, not a storage journal" in err
