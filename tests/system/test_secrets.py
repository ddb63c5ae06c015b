"""No secret reaches a file or the terminal, and a campaign's files are its owner's.

Real campaigns through the command line: one on PostgreSQL with a password in
``--storage`` (a role made for the test; skipped, with the reason, where no PostgreSQL
answers: tests/system/postgres.sh up), one on the journal with a token in the
environment the benchmark sees. Every file the commands leave (runs/, reports/, exports)
and everything they print is searched for the secret.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faultkit import toy_space

SERVER = os.environ.get(
    "SUPERVISOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:55432/supervisor_test"
)
SECRET = f"S3cret-{uuid.uuid4().hex[:12]}"
FLAGS = ("--plain", "--dashboard", "127.0.0.1:0", "--workers", "1")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Session:
    """Commands run as the user runs them, in one folder, under a umask of 022 (the usual
    default, which shares what it can): their output is kept for the search."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.env = {**os.environ, **(env or {})}
        self.outputs: list[str] = []

    def run(self, *args: str, expect: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "supervisor.cli", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            umask=0o022,
        )
        output = done.stdout + done.stderr
        self.outputs.append(output)
        assert done.returncode == expect, f"{args}: exit {done.returncode}\n{output}"
        return output

    def leaks(self, secret: str) -> list[str]:
        """Every file under the folder, and every output, that holds the secret."""
        found = [
            str(path.relative_to(self.folder))
            for path in sorted(self.folder.rglob("*"))
            if path.is_file() and secret.encode() in path.read_bytes()
        ]
        found += [f"output of command {i}" for i, out in enumerate(self.outputs) if secret in out]
        return found


def check_private(folder: Path, study: str) -> None:
    """The run directory is its owner's only; whatever may hold a secret is 0600."""
    run_dir = folder / "runs" / study
    assert mode(run_dir) == 0o700 and run_dir.stat().st_uid == os.getuid()
    secretive = [
        run_dir / "run.json",
        run_dir / "manifest.json",
        folder / "reports" / f"{study}.html",
        folder / "trials.csv",
        folder / "trials.manifest.json",
    ]
    if (run_dir / "journal.log").exists():
        secretive.append(run_dir / "journal.log")
    for path in secretive:
        assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"


def the_commands_after_a_search(session: Session, study: str) -> None:
    session.run("status", study)
    session.run("report", study)
    session.run("export", study, "-o", "trials.csv")


@pytest.fixture
def pg_secret_url() -> Iterator[str]:
    """A database owned by a role of its own whose password is the secret."""
    import psycopg  # a dev dependency: its absence is an error, not a reason to skip

    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())[:200]
        pytest.skip(
            f"no PostgreSQL answers at {SERVER} ({reason}); run tests/system/postgres.sh up"
        )
    name = f"sv_secret_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{SECRET}'")
        try:
            admin.execute(f'CREATE DATABASE "{name}" OWNER {name}')
            server = SERVER.split("@", 1)[1].rsplit("/", 1)[0]
            yield f"postgresql://{name}:{SECRET}@{server}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.mark.postgres
def test_a_storage_password_reaches_no_file_and_no_output(
    tmp_path: Path, pg_secret_url: str
) -> None:
    space = toy_space(tmp_path, 4)
    # Commands after the search find the password where libpq looks: run.json has none.
    session = Session(tmp_path, {"PGPASSWORD": SECRET})
    out = session.run("search", space.name, "--storage", pg_secret_url, *FLAGS)
    assert "Finished trials: 4 of 4 requested" in out
    assert "a password on the command line is visible to every user" in out  # ps shows it
    # A URL no parser takes (a port that is no number) is masked all the same.
    bad_port = pg_secret_url.rsplit(":", 1)[0] + ":noport/db"
    session.run("search", space.name, "--storage", bad_port, "--study", "o", *FLAGS, expect=2)
    record = json.loads((tmp_path / "runs" / "toy" / "run.json").read_text())
    assert record["storage"] == pg_secret_url.replace(f":{SECRET}@", "@")
    shown = session.run("search", space.name, "--storage", pg_secret_url, "--dry-run")
    assert "storage     postgresql://" in shown
    # Resuming with the same --storage (its password included) is the same storage.
    session.run("search", space.name, "--storage", pg_secret_url, *FLAGS, "--trials", "5")
    the_commands_after_a_search(session, "toy")
    # A storage that fails names the URL in its error, never the password.
    missing = pg_secret_url.rsplit("/", 1)[0] + "/no_such_database"
    refused = session.run(
        "search", space.name, "--storage", missing, "--study", "other", *FLAGS, expect=2
    )
    assert "no_such_database" in refused and len(refused.strip().splitlines()) == 1
    assert session.leaks(SECRET) == []
    check_private(tmp_path, "toy")


def test_a_token_in_the_environment_reaches_no_file_and_no_output(tmp_path: Path) -> None:
    space = toy_space(tmp_path, 4)
    session = Session(tmp_path, {"SUPERVISOR_TEST_TOKEN": SECRET, "HF_TOKEN": SECRET})
    out = session.run("search", space.name, *FLAGS)
    assert "Finished trials: 4 of 4 requested" in out
    the_commands_after_a_search(session, "toy")
    assert session.leaks(SECRET) == []
    check_private(tmp_path, "toy")
    assert mode(tmp_path / "runs" / "toy" / "journal.log") == 0o600
