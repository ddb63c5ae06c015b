"""``supervisor submit`` when sbatch does not answer, or answers late: one driver job of a
study in the queue, never two, and never a chain stopped by a traceback.

Slurm here is fake: ``sbatch``, ``squeue`` (the jobs recorded in ``queue``, an id and
a script a line) and ``scancel`` (records what it cancels) scripts on PATH.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from supervisor.commands import driver_jobs
from supervisor.commands.submit import SubmitOptions, submit
from supervisor.errors import UserError
from tests.commands.test_submit import cli, space

SQUEUE = '#!/bin/sh\ncat "$(dirname "$0")/queue" 2>/dev/null\n'  # "<id> <script>" lines
SCANCEL = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/cancelled"\n'
# --test-only answers; the submission takes the job (the queue shows it), then hangs.
TAKES_THEN_HANGS = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
case "$*" in *--test-only*) cat >/dev/null; exit 0 ;; esac
echo "4343 $2" >> "$(dirname "$0")/queue"
sleep 1000
"""
# Takes every job at once.
TAKES = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
echo 4242
"""
# Never answers.
HANGS = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
sleep 1000
"""
# The first submission hangs, its job taken late; the next one is answered once the
# controller has got to the first (in order, as slurmctld does).
LATE = """#!/bin/sh
here=$(dirname "$0")
echo "$@" >> "$here/calls"
n=$(wc -l < "$here/calls")
if [ "$n" -eq 1 ]; then
  setsid sh -c "sleep 5; echo '4001 $2' >> '$here/queue'" </dev/null >/dev/null 2>&1 &
  sleep 1000
fi
while ! grep -q 4001 "$here/queue" 2>/dev/null; do sleep 0.1; done
echo "4002 $2" >> "$here/queue"
echo 4002
"""


def fake_slurm(folder: Path, sbatch: str, queue: str = "") -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", sbatch), ("squeue", SQUEUE), ("scancel", SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if queue:
        (bin_dir / "queue").write_text(queue)
    return bin_dir


def lines(bin_dir: Path, name: str) -> list[str]:
    path = bin_dir / name
    return path.read_text().splitlines() if path.exists() else []


def profile(folder: Path) -> Path:
    path = folder / "s.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\ntls: false\nsubmit_timeout: 2\n")
    return path


def test_a_second_driver_of_a_study_is_refused(tmp_path: Path) -> None:
    """`supervisor submit` again while the chain's link waits in the queue (or runs)
    submitted a second driver: two chains drove the study, and each renewed itself."""
    space(tmp_path)
    queued = f"555 {tmp_path}/runs/toy/driver/driver.sbatch\n"
    bin_dir = fake_slurm(
        tmp_path, TAKES_THEN_HANGS, queue=f"554 /elsewhere/driver.sbatch\n{queued}"
    )
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "error: runs/toy: driver job 555 of this study is in the queue already: not"
        " submitting a second driver (`scancel 555` first to replace it)"
    )
    assert not any("--parsable" in call for call in lines(bin_dir, "calls"))


def test_a_driver_job_taken_by_an_sbatch_that_then_hung_is_the_chain_s(tmp_path: Path) -> None:
    """The chain waited on sbatch until the link's walltime (subprocess's 60 s, then a
    TimeoutExpired traceback): the job it had taken ran with no chain record."""
    space(tmp_path)
    profile(tmp_path)
    bin_dir = fake_slurm(tmp_path, TAKES_THEN_HANGS)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    started = time.monotonic()
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "s.yaml", path=path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    assert "Submitted the driver as job 4343" in done.stdout
    assert sum("--parsable" in call for call in lines(bin_dir, "calls")) == 1
    chain = (tmp_path / "runs" / "toy" / "driver" / "chain.json").read_text()
    assert '"job_id": "4343"' in chain
    assert "Traceback" not in done.stderr


def test_an_sbatch_that_never_answers_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_jobs, "RETRY_PAUSES", (0.1,))
    space(tmp_path)
    bin_dir = fake_slurm(tmp_path, HANGS)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    opts = SubmitOptions("toy.yaml", str(profile(tmp_path)), [], "toy")
    with pytest.raises(UserError) as refused:
        submit(opts)
    assert str(refused.value) == (
        "sbatch refuses the driver job: sbatch gave no answer in 2 s (timed out; killed)"
    )
    assert len(lines(bin_dir, "calls")) == 2  # --test-only, once again after a pause


def test_a_driver_job_taken_late_beside_the_one_submitted_again_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its try timed out and the queue showed no job, so sbatch was run again; the first
    job then came too: two drivers of one study, each submitting the chain's next link."""
    monkeypatch.setattr(driver_jobs, "RETRY_PAUSES", (0.1,))
    # A driver job of the same name, of a study in another folder: not this chain's.
    bin_dir = fake_slurm(tmp_path, LATE, queue="3999 /elsewhere/runs/toy/driver/driver.sbatch\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    driver = driver_jobs.Driver("sv-toy-driver", tmp_path / "driver.sbatch")
    done = driver_jobs.sbatch(["--parsable", str(driver.script)], None, 3.0, driver)
    assert (done.returncode, done.stdout.strip()) == (0, "4002")
    assert lines(bin_dir, "cancelled") == ["4001"]
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sbatch: job 4001 of a try that timed out was taken late: cancelled (job 4002 is the"
        " chain's)"
    )


@pytest.mark.parametrize(
    ("signals", "next_link"),
    [(["TERM"], False), (["USR1"], True), (["USR1", "TERM"], False)],
    ids=["scancel", "walltime", "requeued-after-the-warning"],
)
def test_only_the_walltime_warning_submits_the_next_link(
    tmp_path: Path, signals: list[str], next_link: bool
) -> None:
    """`scancel` of a link (or `scontrol requeue`) sends its script a SIGTERM: the driver
    stopped cleanly and the script submitted the next link all the same, so a cancelled
    chain went on, and a requeued link came back beside its successor (two drivers).
    A SIGTERM within the grace after the warning is no walltime either (that comes at
    the job's end): a requeue or scancel then ended in a next link too."""
    import signal
    import subprocess

    (tmp_path / "toy.yaml").write_text(
        'study: toy\nbenchmark: {name: "tests.toy_benchmark:ToyBenchmark",'
        " options: {delay: 0.3}}\n"
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 200, epochs: 1}\n"
    )
    dry = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    script = dry.stdout[dry.stdout.index("#!/usr/bin/env bash\n") :]
    script = script.replace("--launcher slurm --plain", "--launcher local --plain")  # here
    assert "search toy.yaml --launcher local --plain &" in script
    bin_dir = fake_slurm(tmp_path, TAKES)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    link = subprocess.Popen(
        ["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until the link made progress
            count = cli(tmp_path, "chain", "runs/toy", "--count").stdout.strip()
            if count.isdigit() and int(count) >= 2:
                break
            time.sleep(0.5)
        for name in signals:
            link.send_signal(getattr(signal, f"SIG{name}"))
            time.sleep(1)
        out, _ = link.communicate(timeout=90)
    finally:
        link.kill()
    submitted = any("--parsable" in call for call in lines(bin_dir, "calls"))
    assert submitted == next_link, out
    # The driver's summary promised a next link that a cancelled one never submits.
    promised = "The chain's next driver job continues the search" in out
    if len(signals) == 1:  # (after the warning it cannot know of a later SIGTERM)
        assert promised == next_link, out
    if not next_link:
        assert out.strip().splitlines()[-1] == (
            "The chain stops here: this driver job was cancelled or requeued (SIGTERM before"
            " its walltime); a requeued job runs this link again, else `supervisor submit`"
            " with the same arguments continues the chain."
        )


def test_a_submit_typed_after_supervisor_stop_withdraws_it(tmp_path: Path) -> None:
    """A chain's link ends at once on a stop request made before it started: after
    `supervisor stop`, the `supervisor submit` that was to continue the campaign started
    a driver job that stopped at once, and the chain with it, every time."""
    space(tmp_path)
    ran = cli(tmp_path, "search", "toy.yaml", "--trials", "2", "--no-report", "--plain")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert cli(tmp_path, "stop", "toy").returncode == 0
    bin_dir = fake_slurm(tmp_path, TAKES)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    env_chain = {"SUPERVISOR_DRIVER_CHAIN": "1"}
    link = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path, env=env_chain)
    assert link.returncode == 0, link.stderr
    assert "stop requested" in cli(tmp_path, "status", "toy").stdout  # a link keeps it
    (tmp_path / "runs" / "toy" / "driver" / "chain.json").unlink()
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("Withdrew the stop request (supervisor stop by "), done.stderr
    assert "stop requested" not in cli(tmp_path, "status", "toy").stdout


def test_the_next_link_s_sbatch_gives_up_before_the_link_s_walltime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the warning a link has --grace seconds; sbatch's tries (up to 7 x the
    timeout, plus a minute of pauses) went on past them and Slurm killed the link
    mid-try: the chain ended with no word of why in its log."""
    bin_dir = fake_slurm(tmp_path, HANGS)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(driver_jobs.ENDS_ENV, str(int(time.time()) + 9))
    started = time.monotonic()
    driver = driver_jobs.Driver("sv-toy-driver", tmp_path / "driver.sbatch")
    done = driver_jobs.sbatch(["--parsable", str(driver.script)], None, 60.0, driver)
    assert time.monotonic() - started < 9
    assert done.returncode == 1
    assert done.stderr.endswith("; no time left before this driver job's walltime")
    assert "gave no answer" in done.stderr


@pytest.mark.parametrize("launcher", ["local", "mpi"])
def test_a_launcher_without_batch_jobs_is_refused(tmp_path: Path, launcher: str) -> None:
    """The driver job reserves one core (--cpus-per-task=1): a local profile's workers, one
    per core of the node, shared it; an mpi one had no mpiexec."""
    space(tmp_path)
    done = cli(tmp_path, "submit", "toy.yaml", "--launcher", launcher, "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: --launcher {launcher}: a {launcher} profile would run the workers inside the"
        " driver's job, which reserves one core; give a batch profile (slurm, pbs, ...),"
        " whose workers run in jobs of their own"
    )


# Lists the queue only when asked for pending jobs (`supervisor stop`'s question).
SQUEUE_PENDING = """#!/bin/sh
case "$*" in *"-t PENDING "*) cat "$(dirname "$0")/queue" 2>/dev/null ;; esac
"""


def test_supervisor_stop_cancels_the_chain_s_pending_driver_job(tmp_path: Path) -> None:
    """The stop request ended the chain, but only once its next driver job had waited
    its turn, started, submitted worker jobs and stopped: the queue and a node spent on
    a job whose one purpose was to stop."""
    space(tmp_path)
    ran = cli(tmp_path, "search", "toy.yaml", "--trials", "2", "--no-report", "--plain")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    bin_dir = fake_slurm(tmp_path, TAKES)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    assert cli(tmp_path, "submit", "toy.yaml", "--launcher", "slurm", path=path).returncode == 0
    script = tmp_path / "runs" / "toy" / "driver" / "driver.sbatch"
    (bin_dir / "queue").write_text(f"4242 {script}\n")
    (bin_dir / "squeue").write_text(SQUEUE_PENDING)
    done = cli(tmp_path, "stop", "toy", path=path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "Cancelled the chain's driver job 4242 (it waited in the queue). No driver of 'toy'"
    ), done.stdout
    assert lines(bin_dir, "cancelled") == ["4242"]
