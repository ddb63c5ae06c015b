"""What a run directory keeps: no storage password, and nothing for other users."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.commands.preflight import storage_url
from supervisor.errors import UserError
from supervisor.study.storage import redact


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("postgresql://u:SECRET@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql+psycopg://u:p%40SECRET@h/db?sslmode=require", "postgresql+psycopg://u@h/db?sslmode=require"),
        ("postgresql://u@h/db?password=SECRET&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("mysql://u:SECRET@h/db?PWD=SECRET", "mysql://u@h/db"),
        ("notsqlalchemy://u:SECRET@h/x", "notsqlalchemy://u@h/x"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///runs/x.db", "sqlite:///runs/x.db"),
        ("journal:/runs/x/journal.log", "journal:/runs/x/journal.log"),
        (None, None),
    ],
)  # fmt: skip
def test_a_storage_url_loses_its_password_and_nothing_else(
    url: str | None, kept: str | None
) -> None:
    assert rundir.without_password(url) == kept
    if url is not None:
        assert "SECRET" not in redact(url)


def test_the_run_record_keeps_no_password_whoever_writes_it(tmp_path: Path) -> None:
    record = rundir.RunRecord("s", "postgresql://u:SECRET@h/db", "s.yaml", "supervisor search")
    rundir.write_record(tmp_path, record)
    text = (tmp_path / rundir.RUN_FILE).read_text()
    assert "SECRET" not in text
    assert json.loads(text)["storage"] == "postgresql://u@h/db"
    assert mode(tmp_path / rundir.RUN_FILE) == 0o600
    assert record.storage == "postgresql://u:SECRET@h/db", "the caller's record is untouched"


def test_a_run_directory_is_made_private_also_when_it_existed_wider(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "study"
    previous = os.umask(0o000)
    try:
        rundir.make_private(run_dir, journal=False)
        assert mode(run_dir) == 0o700
        assert not (run_dir / rundir.JOURNAL_FILE).exists()
        run_dir.chmod(0o755)  # a run made before runs were private
        journal = run_dir / rundir.JOURNAL_FILE
        journal.write_text('{"op_code": 0}\n')
        journal.chmod(0o644)
        rundir.make_private(run_dir, journal=True)
    finally:
        os.umask(previous)
    assert mode(run_dir) == 0o700 and mode(journal) == 0o600
    assert journal.read_text() == '{"op_code": 0}\n', "the journal's records are kept"


@pytest.mark.parametrize(
    ("url", "masked", "bare"),
    [
        # a port that is no number and several hosts: no parser takes them, and the
        # message quoting the URL printed the password
        (
            "postgresql://pg:S3cr3t@127.0.0.1:notaport/db",
            "postgresql://pg:***@127.0.0.1:notaport/db",
            "postgresql://pg@127.0.0.1:notaport/db",
        ),
        (
            "postgresql://pg:S3cr3t@h1:5432,h2:5432/db",
            "postgresql://pg:***@h1:5432,h2:5432/db",
            "postgresql://pg@h1:5432,h2:5432/db",
        ),
        # an '@' in the password: the host is after the last one
        ("postgresql://pg:Pa@ss@127.0.0.1/db", "postgresql://pg:***@127.0.0.1/db", None),
        # a '?' in the password (SQLAlchemy reads it to the '@'): taken for the query's, it
        # left the password whole in run.json, the manifest and every message
        (
            "postgresql://pg:Pa?ss1@127.0.0.1/db?sslmode=require",
            "postgresql://pg:***@127.0.0.1/db?sslmode=require",
            "postgresql://pg@127.0.0.1/db?sslmode=require",
        ),
        ("postgresql://me@srv:Pa?ss1@h/db", "postgresql://me@srv:***@h/db", None),  # Azure's
        # libpq's sslpassword was stored in run.json, the manifest and the report
        (
            "postgresql://pg@h/db?sslpassword=S3cr3t&sslmode=require",
            "postgresql://pg@h/db?sslpassword=***&sslmode=require",
            "postgresql://pg@h/db?sslmode=require",
        ),
        ("sqlite:////tmp/a@b.db", "sqlite:////tmp/a@b.db", "sqlite:////tmp/a@b.db"),
    ],
)
def test_secrets_leave_every_url_however_it_is_written(
    url: str, masked: str, bare: str | None
) -> None:
    assert redact(url) == masked
    assert rundir.without_password(url) == (bare or masked.replace(":***", ""))
    assert all(s not in redact(url) for s in rundir.secrets_in(url))


def test_a_drivers_message_quoting_part_of_the_password_is_scrubbed() -> None:
    """With an '@' in the password, libpq reported the host as 'ss@127.0.0.1'."""
    assert set(rundir.secrets_in("postgresql://pg:Pa@ss1@127.0.0.1/db")) == {"Pa@ss1", "ss1"}


def test_the_folders_a_run_creates_are_never_writable_by_others(tmp_path: Path) -> None:
    """Under umask 000 ``runs/`` and ``reports/`` were 0777: any user on the login node
    could rename a run or a report away and put their own in its place."""
    previous = os.umask(0o000)
    try:
        rundir.make_private(tmp_path / "deep" / "runs" / "study", journal=True)
        atomic.write(tmp_path / "reports" / "study.html", "<html>", mode=0o600)
    finally:
        os.umask(previous)
    for made in ("deep", "deep/runs", "reports"):
        assert mode(tmp_path / made) == 0o755, made
    assert mode(tmp_path / "deep" / "runs" / "study") == 0o700
    assert mode(tmp_path / "reports" / "study.html") == 0o600
    previous = os.umask(0o077)  # a stricter umask is kept
    try:
        rundir.make_private(tmp_path / "strict" / "study", journal=False)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "strict") == 0o700


def test_a_storage_that_is_no_url_is_refused_without_its_password() -> None:
    """A slash short, no masking read it: the one-line error printed the password."""
    with pytest.raises(UserError, match=r"^--storage '\*\*\*@db/hpo': expected a URL"):
        storage_url("postgresql:/me:hunter2@db/hpo")
    assert redact("postgresql:/me:hunter2@db/hpo") == "***@db/hpo"  # every other message
    assert redact("runs/me@box/journal.log") == "runs/me@box/journal.log"  # a file: as is
