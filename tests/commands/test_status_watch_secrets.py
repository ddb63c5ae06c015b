"""``supervisor status --watch`` says a storage away in one line, without its password."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy.exc

import supervisor.commands.show_status as show

URL = "postgresql://me:s3cr3t-pw@db.example.org/hpo"


def test_a_storage_error_in_the_watch_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The driver's message quoted the connection string it could not use: the watch
    printed it as it was, password and all, where every other storage message masks it."""
    opened = SimpleNamespace(study=object(), run_dir=tmp_path, storage_url=URL)
    monkeypatch.setattr(show, "open_run", lambda run, runs_dir: opened)
    quoted = f'invalid dsn: missing "=" after "{URL}" in connection info string'
    away = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(quoted))
    looks = iter([SimpleNamespace(left=3)])

    def print_status(study: Any, **kwargs: Any) -> Any:
        shown = next(looks, None)
        if shown is None:
            raise away
        return shown

    monkeypatch.setattr(show, "print_status", print_status)
    sleeps = iter([None])  # the second look fails, then the user's Ctrl-C

    def sleep(seconds: float) -> None:
        if next(sleeps, "done") == "done":
            raise KeyboardInterrupt

    monkeypatch.setattr(show.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        show.show_status("hpo", tmp_path, watch=5)
    err = capsys.readouterr().err
    assert "cannot read the run's storage: (builtins.Exception) invalid dsn" in err
    assert "postgresql://me:***@db.example.org/hpo" in err
    assert "s3cr3t" not in err
