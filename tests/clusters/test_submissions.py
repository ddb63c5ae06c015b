"""A batch system that refuses worker jobs, or keeps them queued: said, not waited for.

The schedulers are fake ``qsub``/``bsub``/``condor_submit`` scripts on PATH: one refuses
every job as a site does for an unknown queue, one takes the first job (which never
starts) and refuses the next as over a per-user limit of queued jobs.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from supervisor.clusters.jobqueue import make_jobqueue
from supervisor.clusters.profile import load

TOY = "tests.toy_benchmark:ToyBenchmark"
# Refuses every job, as PBS does for a queue that does not exist.
REFUSE = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
echo "qsub: Unknown queue" >&2
exit 170
"""
# Takes the first job (never started) and refuses the others: a per-user queue limit.
LIMIT = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
if mkdir "$FAKE_QUEUE/taken" 2>/dev/null; then
  echo "1.server"
  exit 0
fi
echo "qsub: would exceed queue's per-user limit of jobs in 'Q' state" >&2
exit 38
"""
CANCEL = "#!/bin/bash\n"


def fake_queue(folder: Path, monkeypatch: pytest.MonkeyPatch, submit: str, script: str) -> None:
    folder.mkdir()
    for name, text in (
        (submit, script),
        ("qdel", CANCEL),
        ("bkill", CANCEL),
        ("condor_rm", CANCEL),
    ):
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUEUE", str(folder))


def calls(folder: Path) -> int:
    path = folder / "calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_cluster_whose_job_was_taken_closes_whole_and_cancels_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dask-jobqueue's job left its status running when cancelled: distributed's close
    stopped half-way on an assertion about every job object still alive (raised
    AssertionError, the cluster stayed closing and its event loop ran on)."""
    from distributed.core import Status

    fake_queue(tmp_path / "pbs", monkeypatch, "qsub", LIMIT)
    (tmp_path / "pbs" / "qdel").write_text('#!/bin/bash\necho "$*" > "$FAKE_QUEUE/cancelled"\n')
    path = tmp_path / "p.yaml"
    path.write_text("kind: pbs\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\ntls: false\n")
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "close", "127.0.0.1:0")
    try:
        deadline = time.monotonic() + 30
        while not handle.cluster.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs = list(handle.cluster.workers.values())  # alive, as an exception's frame holds one
    finally:
        handle.client.close()
        handle.cluster.close()
    assert handle.cluster.status == Status.closed
    assert [job.status for job in jobs] == [Status.closed]
    assert (tmp_path / "pbs" / "cancelled").read_text().split() == ["1"]
