"""A driver killed with its batch job is recognised at once, not after its lease."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from supervisor.study import batch_job, recovery

OTHER_HOST_DRIVER = "node07:4242:ab12cd34"


@pytest.fixture
def scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``scontrol`` on PATH that prints ``$tmp/job.txt`` (or fails, if absent)."""
    script = tmp_path / "scontrol"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ -f {tmp_path}/job.txt ]; then cat {tmp_path}/job.txt; exit 0; fi\n"
        'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(batch_job, "_answers", {})
    return tmp_path / "job.txt"


def alive(driver: str) -> bool:
    now = time.time()
    return recovery.driver_alive(driver, {driver: now - 1}, now, recovery.STALE_AFTER)


def test_the_driver_id_names_its_slurm_job_and_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert recovery.new_driver_id().endswith(":slurm=123.2")
    monkeypatch.delenv("SLURM_JOB_ID")
    assert recovery.new_driver_id().count(":") == 2


def test_a_fresh_lease_of_a_driver_whose_job_is_gone_is_not_trusted(scontrol: Path) -> None:
    driver = f"{OTHER_HOST_DRIVER}:slurm=77.0"
    scontrol.write_text("JobId=77 JobName=drv JobState=RUNNING Restarts=0 NodeList=n1\n")
    assert alive(driver)
    batch_job._answers.clear()
    scontrol.write_text("JobId=77 JobName=drv JobState=TIMEOUT Restarts=0 NodeList=n1\n")
    assert not alive(driver)
    batch_job._answers.clear()
    scontrol.write_text("JobId=77 JobName=drv JobState=RUNNING Restarts=1 NodeList=n2\n")
    assert not alive(driver), "requeued: the driver of its first run is dead"
    batch_job._answers.clear()
    scontrol.unlink()
    assert not alive(driver), "purged from Slurm: gone"


def test_the_requeued_job_itself_knows_its_earlier_driver_is_dead(
    scontrol: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert not alive(f"{OTHER_HOST_DRIVER}:slurm=77.0")
    assert batch_job._answers == {}, "decided without asking Slurm"


def test_without_an_answer_from_slurm_the_lease_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol at all
    monkeypatch.setattr(batch_job, "_answers", {})
    driver = f"{OTHER_HOST_DRIVER}:slurm=77.0"
    assert alive(driver)
    now = time.time()
    stale = now - recovery.STALE_AFTER - 1
    assert not recovery.driver_alive(driver, {driver: stale}, now, recovery.STALE_AFTER)
