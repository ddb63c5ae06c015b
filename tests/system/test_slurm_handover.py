"""Worker jobs still queued when a link of a driver chain stops at its walltime warning keep
their place in the queue: the next link adopts them, submits none in their stead, and
their workers join its scheduler (supervisor/clusters/handover.py). Before, the link's
close cancelled them and the next link queued fresh ones at the back of the queue."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from supervisor.clusters.handover import CHAIN_ENV, KEPT_FILE
from supervisor.study.storage import load_study
from tests import faultkit
from tests.system import slurmkit
from tests.system.slurmkit import FOREGROUND

pytestmark = pytest.mark.slurm


def link(folder: Path, space: Path, profile: Path, log: Path) -> subprocess.Popen[str]:
    """One link of the chain: the search as the driver job's script runs it."""
    args = faultkit.search_args(space, "--launcher", str(profile))
    with log.open("w") as out:
        return subprocess.Popen(
            args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env={**os.environ, CHAIN_ENV: "1"},
        )  # fmt: skip


WAITED = 10  # seconds a kept job that started between the links waits for the next


def states(name: str) -> list[tuple[str, str]]:
    return [(job, state) for job, state, _ in slurmkit.squeue(name)]


def lifetimes(study: str) -> dict[str, int]:
    """The --lifetime of the campaign's worker processes running on this host, by name."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args]
        ours = "distributed.cli.dask_worker" in words and any(study in w for w in words)
        if ours and "--lifetime" in words:
            life = int(words[words.index("--lifetime") + 1].rstrip("s"))
            found[words[words.index("--name") + 1]] = life
    return found


def wait(what: str, test: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s"
        time.sleep(0.5)


def test_queued_worker_jobs_are_kept_for_the_next_link_and_adopted(
    tmp_path: Path, slurm_nodes: None
) -> None:
    study = f"handover-{os.getpid()}"
    name = f"sv-{study}"
    space = faultkit.toy_space(tmp_path, 6, delay=0.5, epochs=2, study=study)
    profile = tmp_path / "slurm-test.yaml"
    # Held in the queue until the test lets them start (the machine is busy).
    profile.write_text(
        "kind: slurm\ncores: 1\nprocesses: 1\nmemory: 1GiB\nwalltime: '00:10:00'\n"
        "min_jobs: 2\nmax_jobs: 2\n"
        f"job_extra_directives: ['--constraint={'|'.join(FOREGROUND)}', '--begin=now+900']\n"
    )
    first = second = None
    try:
        first = link(tmp_path, space, profile, tmp_path / "link1.log")
        wait("2 queued worker jobs", lambda: len(slurmkit.squeue(name)) == 2)
        queued = sorted(job for job, _, _ in slurmkit.squeue(name))
        first.send_signal(signal.SIGUSR1)  # the walltime warning
        assert first.wait(timeout=60) == 138, (tmp_path / "link1.log").read_text()
        said = (tmp_path / "link1.log").read_text()
        assert "Kept 2 queued worker job(s) for the next driver job" in said, said
        # Still in the queue, in their place, between the links.
        assert sorted((j, s) for j, s, _ in slurmkit.squeue(name)) == [
            (job, "PENDING") for job in queued
        ]

        kept = json.loads((tmp_path / "runs" / study / KEPT_FILE).read_text())
        early, life = next(
            (j["name"], j["lifetime"]) for j in kept["jobs"] if j["job_id"] == queued[0]
        )
        # One kept job starts between the links: it waits for the next driver.
        slurmkit.run("scontrol", "update", f"JobId={queued[0]}", "StartTime=now")
        wait("a kept job running", lambda: (queued[0], "RUNNING") in states(name))
        time.sleep(WAITED)
        second = link(tmp_path, space, profile, tmp_path / "link2.log")
        adopted = f"Adopted 2 worker job(s) the last driver job kept: {', '.join(queued)}"
        wait("adoption", lambda: adopted in (tmp_path / "link2.log").read_text())
        slurmkit.run("scontrol", "update", f"JobId={queued[1]}", "StartTime=now")
        # Its worker lives what is left of its lifetime after the wait, not more.
        wait("the waiting job's worker", lambda: early in lifetimes(study))
        assert lifetimes(study)[early] <= life - WAITED, (life, lifetimes(study))
        assert second.wait(timeout=120) == 0, (tmp_path / "link2.log").read_text()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        slurmkit.run("scancel", "-n", name)
    # The budget was trained by the two jobs the first link queued: none submitted since.
    logs = tmp_path / "runs" / study / "jobs"
    assert sorted(p.stem.rsplit("-", 1)[1] for p in logs.glob("*.err")) == queued
    assert not (tmp_path / "runs" / study / KEPT_FILE).exists()
    finished = faultkit.finished(load_study(faultkit.journal_url(space, study), study))
    assert finished == 6


def test_a_kept_job_ends_at_once_when_the_next_link_s_driver_job_is_cancelled(
    tmp_path: Path, slurm: None
) -> None:
    """Its prologue looks the chain's latest driver job up in Slurm's queue: held there, it
    waits; cancelled by the user (scancel), it ends rather than wait 10 minutes on a node."""
    from supervisor.clusters.handover import ADDRESS_ENV, prologue

    driver = slurmkit.run(
        "sbatch", "--parsable", "--hold", "-J", f"sv-kept-{os.getpid()}-driver",
        "-o", "/dev/null", "--wrap", "true",
    ).stdout.strip().split(";")[0]  # fmt: skip
    (tmp_path / "driver").mkdir()
    (tmp_path / "driver" / "chain.json").write_text(json.dumps([{"job_id": driver}], indent=2))
    script = "\n".join([*prologue(tmp_path), f'echo "joined ${ADDRESS_ENV}"'])
    try:
        waiting = subprocess.Popen(["bash", "-c", script], stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert waiting.poll() is None, waiting.stderr  # its driver is queued: it waits
        waiting.kill()
        waiting.communicate()
    finally:
        slurmkit.run("scancel", driver)
    wait("the driver job gone", lambda: not slurmkit.run("squeue", "-h", "-j", driver).stdout)
    begun = time.monotonic()
    ended = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - begun < 30 and ended.stdout == ""
    assert f"driver job {driver} has left the queue (cancelled?): ending" in ended.stderr
