"""The storage's password stays with the driver: only the driver opens the storage.

Worker jobs were submitted with the driver's whole environment, which sbatch and bsub
hand to the job (the batch system keeps it: Slurm's job_env accounting, its state files),
PGPASSWORD included; every trial's process (any plugin's code) had it too.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from supervisor.clusters.jobqueue import job_class, submit_command
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
