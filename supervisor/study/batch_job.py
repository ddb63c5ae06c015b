"""The batch job a driver runs in, and whether a job is gone: a driver killed with its job
(walltime, ``scancel``, a dead node, ``scontrol requeue``) is recognised at once instead
of after its lease runs out.

A job is named ``slurm=<id>.<restarts>``: a requeued job keeps its id and counts a
restart, and the driver of its earlier run is as dead as one whose job ended. Only Slurm
is asked (``scontrol show job``); elsewhere, or when Slurm does not answer within
``TIMEOUT`` seconds, nothing is concluded and the lease decides.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

TIMEOUT = 5.0
FRESH_FOR = 5.0  # seconds an answer about a job is reused (recovery asks per trial)
LIVE_STATES = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "CONFIGURING", "RESIZING"}
_answers: dict[str, tuple[float, bool | None]] = {}


def current() -> str:
    """This process's batch job (``slurm=<id>.<restarts>``), or "" outside one."""
    job = os.environ.get("SLURM_JOB_ID", "")
    if not job.isdigit():
        return ""
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    return f"slurm={job}.{restarts if restarts.isdigit() else 0}"


def gone(job: str) -> bool:
    """True when ``job`` (as ``current`` names it) certainly no longer runs."""
    match = re.fullmatch(r"slurm=(\d+)\.(\d+)", job)
    if match is None:
        return False
    job_id, restarts = match.group(1), int(match.group(2))
    here = re.fullmatch(r"slurm=(\d+)\.(\d+)", current())
    if here is not None and here.group(1) == job_id:
        return int(here.group(2)) != restarts  # this job, run again since
    cached = _answers.get(job_id)
    if cached is None or time.monotonic() - cached[0] > FRESH_FOR:
        cached = (time.monotonic(), _slurm_job_gone(job_id, restarts))
        _answers[job_id] = cached
    return cached[1] is True


def _slurm_job_gone(job_id: str, restarts: int) -> bool | None:
    try:
        done = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no Slurm here, or it does not answer: let the lease decide
    if done.returncode != 0:
        # Slurm answered that it does not know the job (purged after MinJobAge).
        return "Invalid job id" in done.stderr or None
    fields = dict(re.findall(r"(\w+)=(\S*)", done.stdout))
    state = fields.get("JobState", "")
    ran_again = fields.get("Restarts", "0").isdigit() and int(fields["Restarts"]) != restarts
    return ran_again or state not in LIVE_STATES
