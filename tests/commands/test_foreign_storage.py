"""A run another user wrote picks no database server for the reader's credentials.

``run.json`` names the storage every later command opens. One planted in a shared runs
folder could name any PostgreSQL server: ``supervisor status`` connected to it with the
reader's PGPASSWORD (or ~/.pgpass, or libpq's service file), handing it the password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import supervisor
from supervisor.rundir import TRUST_ENV


class Server:
    """A listening port that counts the connections it gets and closes each at once."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.got = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections += 1
            conn.close()
            self.got.set()


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    yield found
    found.sock.close()


def planted_run(tmp_path: Path, url: str) -> Path:
    run_dir = tmp_path / "runs" / "planted"
    run_dir.mkdir(parents=True)
    record = {"study": "planted", "storage": url, "space_file": "s.yaml", "command": "x"}
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


@pytest.fixture
def someone_else(monkeypatch: pytest.MonkeyPatch) -> int:
    """Files made here are now another user's; the reader has a password in libpq's place."""
    mine = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: mine + 1)
    monkeypatch.setenv("PGPASSWORD", "the-readers-password")
    monkeypatch.delenv(TRUST_ENV, raising=False)
    return mine


def test_another_users_run_naming_a_server_is_refused_before_connecting(
    tmp_path: Path, server: Server, someone_else: int
) -> None:
    url = f"postgresql://me:planted@127.0.0.1:{server.port}/db?sslmode=disable"
    run_dir = planted_run(tmp_path, url)
    with pytest.raises(supervisor.UserError) as caught:
        supervisor.open_run(run_dir).status()
    said = str(caught.value)
    assert said.startswith(f"{run_dir}: written by another user (uid {someone_else})")
    assert f"{TRUST_ENV}='postgresql://me@127.0.0.1:{server.port}/db?sslmode=disable'" in said
    assert "planted@" not in said and "\n" not in said
    assert server.connections == 0
    # Found by its study name under the runs folder, alike.
    with pytest.raises(supervisor.UserError, match="written by another user"):
        supervisor.open_run("planted", runs_dir=tmp_path / "runs")


def test_a_server_the_user_names_is_connected_to(
    tmp_path: Path, server: Server, someone_else: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://me@127.0.0.1:{server.port}/db"
    run_dir = planted_run(tmp_path, url)
    monkeypatch.setenv(TRUST_ENV, f"sqlite:///x.db postgresql://me:pw@127.0.0.1:{server.port}/db")
    with pytest.raises(supervisor.UserError, match="cannot open storage"):
        supervisor.open_run(run_dir).status()  # the fake server hangs up
    assert server.got.wait(5) and server.connections >= 1


def test_another_users_run_on_files_is_read_as_before(tmp_path: Path, someone_else: int) -> None:
    """A journal or SQLite file takes no credentials: a colleague's run stays readable."""
    run_dir = planted_run(tmp_path, f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(supervisor.UserError, match="no such SQLite database"):
        supervisor.open_run(run_dir).status()


def test_the_command_says_it_in_one_line_and_exits_2(tmp_path: Path, server: Server) -> None:
    run_dir = planted_run(tmp_path, f"postgresql://me@127.0.0.1:{server.port}/db")
    # The command runs as another user would see it: the run's files are not theirs.
    code = (
        "import os, sys; os.getuid = lambda: -1; from supervisor.cli import main;"
        f" sys.argv = ['supervisor', 'status', {str(run_dir)!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "written by another user" in done.stderr
    assert server.connections == 0
