"""A run directory and its journal are the user's own: never another user's, never a
symbolic link (a shared, world-writable runs folder is where such traps are laid)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import supervisor
from tests.test_api import toy_space


def _search(tmp_path: Path) -> None:
    supervisor.search(
        toy_space(trials=2), workers=1, report=False, progress="none", runs_dir=tmp_path / "runs"
    )


@pytest.mark.parametrize("target", ["a file", "nothing yet"])
def test_a_journal_that_is_a_symbolic_link_is_refused_and_its_target_untouched(
    tmp_path: Path, target: str
) -> None:
    """The search used to write the campaign into the link's target (creating it, or
    filling and chmod-ing someone's file)."""
    elsewhere = tmp_path / "notes.txt"
    if target == "a file":
        elsewhere.write_text("mine\n")
        elsewhere.chmod(0o644)
    run_dir = tmp_path / "runs" / "api-toy"
    run_dir.mkdir(parents=True)
    (run_dir / "journal.log").symlink_to(elsewhere)
    with pytest.raises(supervisor.UserError, match=r"journal\.log: a symbolic link"):
        _search(tmp_path)
    if target == "a file":
        assert elsewhere.read_text() == "mine\n" and elsewhere.stat().st_mode & 0o777 == 0o644
    else:
        assert not elsewhere.exists()
    assert sorted(p.name for p in run_dir.iterdir()) == ["journal.log"]


def test_a_run_directory_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made by another user in a shared runs folder, it stayed theirs (0777): they could
    read every trial and forge records."""
    run_dir = tmp_path / "runs" / "api-toy"
    run_dir.mkdir(parents=True)
    mine = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: mine + 1)  # the folder is now someone else's
    with pytest.raises(supervisor.UserError, match=f"owned by another user \\(uid {mine}\\)"):
        _search(tmp_path)
    assert list(run_dir.iterdir()) == []


def test_a_run_directory_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "api-toy").symlink_to(tmp_path / "real")
    with pytest.raises(supervisor.UserError, match="api-toy: a symbolic link"):
        _search(tmp_path)
    assert list((tmp_path / "real").iterdir()) == []


def test_an_ensemble_of_another_users_run_writes_nothing_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``supervisor ensemble`` checked only that it could write the run directory: in a
    colleague's group-writable run it wrote its members, ensemble.json and its workers'
    output, following any link its owner had left there (workers.log -> ~/.bashrc)."""
    space = {
        "study": "cls",
        "benchmark": {"name": "tests.toy_classifier:ToyClassifier"},
        "objectives": ["val_nll"],
        "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        "budget": {"trials": 3, "epochs": 1},
    }
    supervisor.search(space, workers=1, report=False, progress="none", runs_dir=tmp_path / "runs")
    run_dir = tmp_path / "runs" / "cls"
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    run = supervisor.open_run(run_dir)
    mine = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: mine + 1)  # the run is now someone else's
    with pytest.raises(supervisor.UserError, match=r"cls: owned by another user"):
        run.ensemble(select="topk", size=2, workers=1, progress="none")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


@pytest.mark.parametrize("made", ["a symbolic link", "another user's folder"])
def test_a_run_directory_made_while_the_cluster_starts_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: str
) -> None:
    """The run directory was checked before the cluster started and made after: another
    user who watched ``ps`` for the search had those seconds to make it first, in a shared
    runs folder (a link to a folder of theirs), and got the campaign's files."""
    import contextlib

    from supervisor.clusters import launch

    elsewhere = tmp_path / "theirs"
    elsewhere.mkdir()
    run_dir = tmp_path / "runs" / "api-toy"
    real_open = launch.open_cluster
    mine = os.getuid()

    @contextlib.contextmanager
    def racing(*args: object, **kwargs: object) -> Iterator[object]:
        run_dir.parent.mkdir(exist_ok=True)
        if made == "a symbolic link":
            run_dir.symlink_to(elsewhere)
        else:
            run_dir.mkdir()
            monkeypatch.setattr(os, "getuid", lambda: mine + 1)  # it is someone else's
        with real_open(*args, **kwargs) as handle:  # type: ignore[arg-type]
            yield handle

    monkeypatch.setattr(launch, "open_cluster", racing)
    match = r"api-toy: a symbolic link" if made == "a symbolic link" else r"owned by another"
    with pytest.raises(supervisor.UserError, match=match):
        _search(tmp_path)
    assert list(elsewhere.iterdir()) == []
    if made != "a symbolic link":
        assert list(run_dir.iterdir()) == []
