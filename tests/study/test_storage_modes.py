"""A journal or SQLite file the campaign makes at a ``--storage`` path is its owner's
only, whatever the umask: it holds the campaign's configuration and its trials' errors,
and a project folder on a shared file system is often readable by every user."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import supervisor
from tests.test_api import toy_space


@pytest.fixture
def usual_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _search(tmp_path: Path, storage: str, trials: int = 2) -> None:
    supervisor.search(
        toy_space(trials=trials),
        workers=1,
        report=False,
        progress="none",
        runs_dir=tmp_path / "runs",
        storage=storage,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_storage_file_the_search_makes_is_private(
    tmp_path: Path, usual_umask: None, kind: str
) -> None:
    """Optuna's journal and SQLite made it 0644: readable by every user of the machine."""
    project = tmp_path / "project"  # a folder others may read (0755 under umask 022)
    project.mkdir()
    path = project / ("c.log" if kind == "journal" else "c.db")
    _search(tmp_path, f"journal:{path}" if kind == "journal" else f"sqlite:///{path}")
    assert _mode(path) == 0o600 and path.stat().st_uid == os.getuid()
    # A storage shared on purpose (made readable by its owner) stays as it is on a resume.
    path.chmod(0o640)
    _search(tmp_path, f"journal:{path}" if kind == "journal" else f"sqlite:///{path}", 3)
    assert _mode(path) == 0o640


def test_a_sqlite_storage_that_fails_to_open_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with pytest.raises(supervisor.UserError, match=r"cannot open storage .*timeout=abc"):
        _search(tmp_path, f"sqlite:///{path}?timeout=abc")
    assert not path.exists()
