"""Whole-file replacement: concurrent writers, failed writers, permissions."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import supervisor.atomic as atomic


def _hammer(path: str, tag: str) -> None:
    for i in range(200):
        atomic.write(Path(path), f"{tag} {i}\n" * 100)


def test_concurrent_writers_of_one_file_never_collide(tmp_path: Path) -> None:
    # Two drivers sharing one study write the same run.json at the same moment.
    target = tmp_path / "run.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(target), t)) for t in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    lines = set(target.read_text().splitlines())
    assert len(lines) == 1 and lines.pop() in {"a 199", "b 199", "c 199"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"], "no temporary left behind"


def test_a_failed_writer_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    atomic.write(target, "old\n")
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_the_temporary_keeps_the_suffix_library_writers_insist_on(tmp_path: Path) -> None:
    target = tmp_path / "outputs.npz"
    with atomic.replacing(target) as tmp:
        np.savez(tmp, x=np.arange(3))  # appends ".npz" to any name without it
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["outputs.npz"]


def test_private_files_stay_private_and_others_follow_the_umask(tmp_path: Path) -> None:
    secret, shared = tmp_path / "run.json", tmp_path / "report.html"
    old = os.umask(0o022)
    try:
        atomic.write(secret, "postgresql://user:password@host/db", mode=0o600)
        atomic.write(shared, "<html>", durable=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) & 0o044 == 0o044


def test_a_private_replacement_is_private_whatever_the_writer_does(tmp_path: Path) -> None:
    target = tmp_path / "trials.csv"
    previous = os.umask(0o000)
    try:
        with atomic.replacing(target, mode=0o600) as tmp:
            assert mode_of(tmp) == 0o600, "private before the first byte is written"
            tmp.write_text("truncated and rewritten: the mode stays")
        with atomic.replacing(target, mode=0o600) as tmp:
            tmp.unlink()  # a writer that makes a new file, with the umask's mode
            tmp.write_text("new file")
    finally:
        os.umask(previous)
    assert mode_of(target) == 0o600 and target.read_text() == "new file"
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
