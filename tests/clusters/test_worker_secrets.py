"""The storage's password stays with the driver: only the driver opens the storage.

Worker jobs were submitted with the driver's whole environment, which sbatch and bsub
hand to the job (the batch system keeps it: Slurm's job_env accounting, its state files),
PGPASSWORD included; every trial's process (any plugin's code) had it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from supervisor.clusters.jobqueue import job_class, submit_command
from supervisor.clusters.launch import open_cluster
from supervisor.clusters.submissions import Submissions, watched
from supervisor.execution.node import child_environment

# A submit command that keeps the environment its job would get, and takes the job.
SUBMIT = '#!/bin/bash\nenv > "$FAKE_QUEUE/env"\necho "Submitted batch job 1"\necho "Job <1>"\n'


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-secret")
    monkeypatch.setenv("MYSQL_PWD", "my-secret")
    monkeypatch.setenv("HF_TOKEN", "for-the-benchmark")  # a benchmark's own: kept


@pytest.mark.parametrize(("kind", "command"), [("slurm", "sbatch"), ("lsf", "bsub")])
def test_a_worker_job_is_submitted_without_the_storage_password(
    kind: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: None
) -> None:
    (tmp_path / command).write_text(SUBMIT)
    (tmp_path / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUEUE", str(tmp_path))
    job_cls = watched(job_class(kind), Submissions(submit_command(kind), 10, kind))
    job = job_cls(scheduler="tls://127.0.0.1:1", name="w", cores=1, memory="1GiB")
    (tmp_path / "job.sh").write_text("#!/bin/bash\n")
    assert asyncio.run(job._submit_job(str(tmp_path / "job.sh")))
    env = dict(line.partition("=")[::2] for line in (tmp_path / "env").read_text().splitlines())
    assert "PGPASSWORD" not in env and "MYSQL_PWD" not in env
    assert env["HF_TOKEN"] == "for-the-benchmark"


def test_a_trial_process_gets_no_storage_password(secrets: None) -> None:
    env = child_environment()  # what a worker starts its trials' processes with
    assert "PGPASSWORD" not in env and "MYSQL_PWD" not in env
    assert env["HF_TOKEN"] == "for-the-benchmark"
    assert os.environ["PGPASSWORD"] == "pg-secret"  # the driver's own is left alone


def _inherited() -> dict[str, str | None]:
    """What a process started with this one's environment gets (an inline trial's code,
    or anything the worker starts)."""
    code = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {KEYS!r}}}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return dict(json.loads(done.stdout))


KEYS = ("PGPASSWORD", "MYSQL_PWD", "HF_TOKEN")
WITHOUT = {"PGPASSWORD": None, "MYSQL_PWD": None, "HF_TOKEN": "for-the-benchmark"}


def test_a_local_clusters_workers_and_scheduler_hold_no_storage_password(secrets: None) -> None:
    """They were started with the driver's whole environment."""
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        seen = handle.client.submit(_inherited, pure=False).result(timeout=60)
        in_worker = handle.client.run(lambda: {k: os.environ.get(k) for k in KEYS})
        scheduler = Path(f"/proc/{handle.cluster.scheduler.process.pid}/environ").read_bytes()
    assert seen == WITHOUT and list(in_worker.values()) == [WITHOUT]
    assert b"PGPASSWORD=" not in scheduler and b"MYSQL_PWD=" not in scheduler
    assert os.environ["PGPASSWORD"] == "pg-secret"  # the driver keeps its own


@pytest.mark.parametrize(("rank", "kept"), [(0, False), (1, True), (2, False)])
def test_mpi_ranks_but_the_drivers_drop_the_storage_password(
    rank: int, kept: bool, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mpiexec gives every rank the driver's environment: the scheduler's (0) and the
    workers' ranks, whose trials inherit theirs, drop the password before they serve."""
    from supervisor.clusters import mpi

    environ = dict(os.environ)
    monkeypatch.setattr(os, "environ", environ)  # the ranks' settings stay out of this one
    comm = types.SimpleNamespace(
        Get_size=lambda: 4, Get_rank=lambda: rank, bcast=lambda x, root: x
    )
    monkeypatch.setitem(
        sys.modules, "mpi4py", types.SimpleNamespace(MPI=types.SimpleNamespace(COMM_WORLD=comm))
    )
    serving: list[dict[str, str | None]] = []
    initialize = lambda **kw: serving.append({k: os.environ.get(k) for k in KEYS})  # noqa: E731
    monkeypatch.setitem(sys.modules, "dask_mpi", types.SimpleNamespace(initialize=initialize))
    monkeypatch.setattr(mpi, "configure_dask", lambda: None)
    monkeypatch.setattr(mpi.scratch, "configured", lambda: True)
    monkeypatch.setattr(mpi.signal, "signal", lambda *args: None)
    monkeypatch.setattr(mpi, "_tls_config", lambda launcher: None)
    launcher = types.SimpleNamespace(file="mpi.yaml", extra={}, keywords={}, dashboard=None)
    level = logging.getLogger("distributed").level
    try:
        mpi.serve_unless_driver(launcher, ":0")  # type: ignore[arg-type]
    finally:
        logging.getLogger("distributed").setLevel(level)
    driver = {**WITHOUT, "PGPASSWORD": "pg-secret", "MYSQL_PWD": "my-secret"}
    assert serving == [driver if kept else WITHOUT]
