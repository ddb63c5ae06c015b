"""``sbatch`` and ``squeue`` for the driver's chain (``supervisor submit``): one driver job
of a study in the queue at a time, whatever Slurm answers late or not at all.

Each call is bounded (the launcher profile's ``submit_timeout``, ``unanswered``): a hung
sbatch held the chain's next link until the walltime killed it, and the campaign of days
stopped with a traceback of subprocess's TimeoutExpired. A timeout is a temporary error,
tried again after a pause; a submission that timed out may have been taken, so before
each new try the queue is asked for the driver's job name, and after a submission that
followed a timeout a driver job that showed up late beside it is cancelled.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from supervisor.clusters.submissions import temporary
from supervisor.clusters.unanswered import TimedOut, run

# Pauses between tries of sbatch while Slurm answers with a temporary error: 60 s in all,
# within the grace a link has left after its driver stopped.
RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# When the driver job that submits the next link ends (Unix time, set by its script after
# the walltime warning): sbatch is not tried past it, where Slurm would kill it unsaid.
ENDS_ENV = "SUPERVISOR_LINK_ENDS"
ENDS_MARGIN = 5.0  # seconds kept before that end
# A driver job in these states is the study's driver (a completing one is ending).
LIVE = "PENDING,RUNNING,CONFIGURING,REQUEUED,REQUEUE_HOLD,SUSPENDED,RESIZING"


def first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if "error" in line.lower()), " ".join(lines))[:300]


def sbatch(
    args: list[str], script: str | None, timeout: float, driver: Driver | None = None
) -> subprocess.CompletedProcess[str]:
    """``sbatch ARGS``, tried again after a temporary error of Slurm (its controller
    restarting or too busy to answer: a chain's next link, submitted as its job ends, was
    lost to a minute's outage and the campaign stopped) or no answer in ``timeout``.
    A submission that failed so may have been taken: with ``driver``, its job in the queue
    (not this one) is taken for it, not submitted twice."""
    unsure = False
    ends = _link_ends()
    done = subprocess.CompletedProcess(["sbatch", *args], 1, "", "")
    for pause in (*RETRY_PAUSES, None):
        left = timeout if ends is None else min(timeout, ends - ENDS_MARGIN - time.time())
        if left < 1.0:
            when = "this driver job's walltime"
            done.stderr = (
                f"{done.stderr.strip() or 'sbatch: not tried'}; no time left before {when}"
            )
            return done
        try:
            done = run(["sbatch", *args], left, script)
        except (TimedOut, OSError) as exc:
            done = subprocess.CompletedProcess(["sbatch", *args], 1, "", str(exc))
        if done.returncode == 0:
            if unsure and driver is not None:
                _cancel_late(driver, done.stdout.strip().split(";")[0], timeout)
            return done
        if not temporary(done.stderr):
            return done
        if driver is not None and (jobs := queued(driver, timeout)):
            return subprocess.CompletedProcess(done.args, 0, f"{jobs[0]}\n", "")
        if pause is None:
            return done
        unsure = True
        print(
            f"sbatch: {first_error(done.stderr)} (a temporary error of Slurm): trying again"
            f" in {pause:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        if ends is not None:  # the next try's turn comes before the walltime, or none
            pause = max(0.0, min(pause, ends - ENDS_MARGIN - 1.0 - time.time()))
        time.sleep(pause)
    raise AssertionError("unreachable")


def _link_ends() -> float | None:
    text = os.environ.get(ENDS_ENV, "")
    return float(text) if text.isdigit() else None


@dataclass(frozen=True)
class Driver:
    """A run's driver jobs: their name, and their script (squeue's %o, an absolute path),
    which tells them from those of a study of the same name in another folder."""

    name: str
    script: Path


def queued(driver: Driver, timeout: float, states: str = LIVE) -> list[str]:
    """The ids of the user's live driver jobs of the run (or those in ``states``), other
    than this job; none if squeue does not answer."""
    user = ["-u", getpass.getuser()]
    command = ["squeue", "-h", *user, "-n", driver.name, "-t", states, "-o", "%i %o"]
    try:
        done = run(command, timeout)
    except (OSError, TimedOut):
        return []
    if done.returncode != 0:
        return []
    mine, script = os.environ.get("SLURM_JOB_ID"), str(driver.script.resolve())
    jobs = [line.split(maxsplit=1) for line in done.stdout.splitlines()]
    return [job[0] for job in jobs if len(job) == 2 and job[1] == script and job[0] != mine]


def _cancel_late(driver: Driver, kept: str, timeout: float) -> None:
    """A try that timed out, taken after the queue was asked: a second driver of the
    study beside ``kept``. Cancelled, with a line."""
    for job in queued(driver, timeout):
        if job != kept:
            try:
                run(["scancel", job], timeout)
            except (OSError, TimedOut):
                continue
            print(
                f"sbatch: job {job} of a try that timed out was taken late: cancelled (job"
                f" {kept} is the chain's)",
                file=sys.stderr,
                flush=True,
            )


def cancel_pending(run_dir: Path, study: str, timeout: float = 30.0) -> list[str]:
    """``supervisor stop``: the run's driver jobs waiting in the queue, cancelled (each
    would only start to stop); their ids. None where there is no Slurm."""
    import shutil

    if shutil.which("squeue") is None or shutil.which("scancel") is None:
        return []
    driver = Driver(f"sv-{study}-driver", run_dir / "driver" / "driver.sbatch")
    cancelled = []
    for job in queued(driver, timeout, "PENDING"):
        try:
            if run(["scancel", job], timeout).returncode == 0:
                cancelled.append(job)
        except (OSError, TimedOut):
            continue
    return cancelled


def state(job_id: str, timeout: float = 10.0) -> str | None:
    """The job's state in the queue (PENDING, RUNNING, ...); "" when it is not there (it
    ended); None when there is no squeue or it does not answer."""
    import shutil

    if shutil.which("squeue") is None:
        return None
    try:
        done = run(["squeue", "-h", "-j", job_id, "-o", "%T"], timeout)
    except (OSError, TimedOut):
        return None
    if done.returncode != 0:  # "Invalid job id specified": gone from the controller too
        return "" if "invalid job id" in done.stderr.lower() else None
    return done.stdout.strip()
