"""Reading a campaign changes no storage: a command that reads (status, report, export,
rerun, ensemble) never creates a database file or Optuna's tables in one, and an SQLite
URL that cannot hold a campaign (in memory, a query key its driver ignores) is refused
by every command, ``search`` included, in one line."""

from __future__ import annotations

import sqlite3
import sys
import warnings
from pathlib import Path

import optuna
import pytest

import supervisor.cli
import supervisor.rundir as rundir
from supervisor.errors import UserError
from supervisor.study.storage import load_study, open_storage
from tests.commands.test_hostile_cli import TEMPLATE_FILES, snapshot

READERS = {
    "status": ["status", "h"],
    "report": ["report", "h"],
    "export": ["export", "h"],
    "rerun": ["rerun", "h", "0"],
    "ensemble": ["ensemble", "h", "--workers", "1"],
}


def supervisor_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """The real entry point in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["supervisor", *argv])
    try:
        supervisor.cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy.yaml").write_text(TEMPLATE_FILES["toy.yaml"])
    return tmp_path


def record(work: Path, storage: str) -> None:
    (work / "runs" / "h").mkdir(parents=True)
    rundir.write_record(work / "runs" / "h", rundir.RunRecord("h", storage, "toy.yaml", "x"))


def refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], work: Path, *argv: str
) -> str:
    """The one line a refused command says; nothing under ``work`` changed."""
    before = snapshot(work)
    code = supervisor_cli(monkeypatch, *argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert snapshot(work) == before
    return err


@pytest.mark.parametrize("command", sorted(READERS))
def test_a_missing_sqlite_database_is_not_created(
    command: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record(work, "sqlite:///nonexist.db")
    err = refused(monkeypatch, capsys, work, *READERS[command])
    assert "nonexist.db: no such SQLite database" in err
    assert not (work / "nonexist.db").exists()


@pytest.mark.parametrize("content", ["empty", "other tables"])
def test_a_database_without_optunas_tables_holds_no_study_and_is_left_alone(
    content: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = work / "empty.db"
    db.touch()
    if content == "other tables":
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE notes (line TEXT)")
        connection.close()
    record(work, "sqlite:///empty.db")
    for argv in READERS.values():
        err = refused(monkeypatch, capsys, work, *argv)
        # run.json keeps the file's absolute path (any folder's command finds it)
        assert f"no study 'h' in sqlite:///{work / 'empty.db'}; studies there: none" in err


def test_a_database_with_its_tables_unstamped_is_not_opened(work: Path) -> None:
    """Optuna's RDBStorage writes its version rows where they are missing."""
    url = "sqlite:///part.db"
    optuna.create_study(study_name="h", storage=url)
    with sqlite3.connect(work / "part.db") as connection:
        connection.execute("DELETE FROM alembic_version")
    connection.close()
    before = (work / "part.db").read_bytes()
    with pytest.raises(UserError, match=r"without their version \(alembic_version\)"):
        load_study(url, "h")
    assert (work / "part.db").read_bytes() == before


def test_a_stored_sqlite_study_is_read_and_left_byte_identical(work: Path) -> None:
    url = "sqlite:///s.db"
    study = optuna.create_study(study_name="h", storage=url)
    study.enqueue_trial({"x": 1.0})
    before = (work / "s.db").read_bytes()
    assert len(load_study(url, "h").trials) == 1
    assert (work / "s.db").read_bytes() == before
    assert open_storage(url) is not None  # a writer's open, as before


IN_MEMORY = ["sqlite://", "sqlite:///:memory:"]


@pytest.mark.parametrize("url", IN_MEMORY)
def test_an_in_memory_database_is_refused_by_search(
    url: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["search", "toy.yaml", "--storage", url, "--workers", "1", "--dashboard", ":0"]
    err = refused(monkeypatch, capsys, work, *argv)
    assert f"--storage '{url}': an in-memory database keeps nothing" in err
    assert not (work / "runs").exists()


@pytest.mark.parametrize("url", IN_MEMORY)
def test_an_in_memory_database_in_a_run_record_is_refused(
    url: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record(work, url)
    for argv in READERS.values():
        assert "an in-memory database" in refused(monkeypatch, capsys, work, *argv)


@pytest.mark.parametrize("query", ["mode=ro", "uri=true&mode=memory", "cache=shared"])
def test_a_query_key_sqlite_ignores_is_refused_in_one_line(
    query: str,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///x.db?{query}"
    argv = ["search", "toy.yaml", "--storage", url, "--workers", "1", "--dashboard", ":0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLAlchemy's SAWarning was a second line
        err = refused(monkeypatch, capsys, work, *argv)
    assert f"--storage '{url}': query key" in err and "not supported (only timeout" in err
    record(work, url)
    assert "not supported" in refused(monkeypatch, capsys, work, "status", "h")


def test_query_keys_the_driver_reads_are_kept(work: Path) -> None:
    url = "sqlite:///t.db?timeout=30"
    optuna.create_study(study_name="h", storage=open_storage(url))
    assert load_study(url, "h").study_name == "h"
