"""A batch system that refuses worker jobs, or keeps them queued: said, not waited for.

The schedulers are fake ``qsub``/``bsub``/``condor_submit`` scripts on PATH: one refuses
every job as a site does for an unknown queue, one takes the first job (which never
starts) and refuses the next as over a per-user limit of queued jobs.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.clusters import submissions
from supervisor.clusters.jobqueue import make_jobqueue
from supervisor.clusters.profile import load
from supervisor.commands import preflight

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
# Slurm's controller restarting: the first $FAILS submissions (--test-only too) time out,
# then each job is taken (and never starts).
SLURM_AWAY = """#!/bin/bash
echo "$*" >> "$FAKE_QUEUE/calls"
n=$(wc -l < "$FAKE_QUEUE/calls")
if [ "$n" -le "$FAILS" ]; then
  echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
  exit 1
fi
echo "Submitted batch job $n"
"""


def fake_queue(folder: Path, monkeypatch: pytest.MonkeyPatch, submit: str, script: str) -> None:
    folder.mkdir()
    for name, text in (
        (submit, script),
        ("qdel", CANCEL),
        ("bkill", CANCEL),
        ("condor_rm", CANCEL),
        ("scancel", CANCEL),
    ):
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUEUE", str(folder))


def calls(folder: Path) -> int:
    path = folder / "calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_search_whose_jobs_pbs_refuses_stops_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It waited for workers forever, under one traceback of dask-jobqueue's."""
    fake_queue(tmp_path / "pbs", monkeypatch, "qsub", REFUSE)
    (tmp_path / "toy.yaml").write_text(
        f'study: refused\nbenchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 4, epochs: 1}\nsampler: random\n"
    )
    (tmp_path / "pbs.yaml").write_text(
        "kind: pbs\ncores: 1\nmemory: 1GiB\nwalltime: '00:30:00'\nqueue: gpux\nmax_jobs: 2\n"
        "tls: false\n"
    )
    command = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--plain"]
    command += ["--launcher", "pbs.yaml", "--no-report", "--dashboard", ":0"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert time.monotonic() - started < 60
    assert "Error: pbs.yaml: qsub refuses the worker jobs: qsub: Unknown queue (exit 170)" in out
    assert "Fix the launcher profile, then run the same command again." in out
    assert "Traceback" not in out
    assert 1 <= calls(tmp_path / "pbs") <= 2  # one per job asked for, not asked again


@pytest.mark.parametrize(
    ("kind", "submit", "extra"),
    [
        ("lsf", "bsub", "walltime: '01:00'\n"),
        ("sge", "qsub", ""),
        ("htcondor", "condor_submit", "disk: 1GiB\n"),
    ],
)
def test_every_batch_system_s_refusal_is_said(
    kind: str, submit: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_queue(tmp_path / "queue", monkeypatch, submit, REFUSE.replace("qsub:", f"{submit}:"))
    path = tmp_path / "p.yaml"
    path.write_text(f"kind: {kind}\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\ntls: false\n{extra}")
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "refused", "127.0.0.1:0")
    assert handle.watch is not None
    try:
        deadline, stop = time.monotonic() + 30, None
        while stop is None and time.monotonic() < deadline:
            stop = handle.watch(print)
            time.sleep(0.2)
    finally:
        handle.client.close()
        handle.cluster.close()
    assert stop == f"{path}: {submit} refuses the worker jobs: {submit}: Unknown queue (exit 170)"


def test_a_refusal_after_a_job_was_taken_is_said_once_and_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The campaign goes on (its limit of queued jobs passes); the job it took but that
    never starts is said to wait in the queue."""
    monkeypatch.setattr(submissions, "ASK_AGAIN_AFTER", 1.0)
    monkeypatch.setattr(submissions, "PENDING_AFTER", 0.0)
    fake_queue(tmp_path / "pbs", monkeypatch, "qsub", LIMIT)
    path = tmp_path / "p.yaml"
    path.write_text("kind: pbs\ncores: 1\nmemory: 1GiB\nmin_jobs: 2\nmax_jobs: 2\ntls: false\n")
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "limit", "127.0.0.1:0")
    assert handle.watch is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while calls(tmp_path / "pbs") < 4 and time.monotonic() < deadline:
            assert handle.watch(lines.append) is None
            time.sleep(0.2)
        time.sleep(1.5)
        assert handle.watch(lines.append) is None
    finally:
        handle.client.close()
        handle.cluster.close()
    assert calls(tmp_path / "pbs") >= 4  # the refused job was asked for again, and again
    refused = [line for line in lines if "refused a worker job" in line]
    assert refused == [
        f"{path}: qsub refused a worker job: qsub: would exceed queue's per-user limit of"
        " jobs in 'Q' state (exit 38); asked again in 1 s"
    ]
    waiting = [line for line in lines if line.startswith("Waiting for workers")]
    assert len(waiting) == 1, lines  # once, then every PENDING_EVERY seconds
    assert "1 job(s) taken by qsub" in waiting[0]
    assert str(tmp_path / "run" / "jobs") in waiting[0]


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


@pytest.mark.parametrize(("kind", "submit"), [("pbs", "qsub"), ("htcondor", "condor_submit")])
def test_a_batch_search_without_the_submit_command_is_refused_before_a_write(
    kind: str, submit: str, tmp_path: Path
) -> None:
    """It started the cluster, wrote the run and queued trials, then stopped on a
    FileNotFoundError of the first submission (before that, it waited forever)."""
    (tmp_path / "toy.yaml").write_text(
        f'study: nowhere\nbenchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 2, epochs: 1}\n"
    )
    (tmp_path / "p.yaml").write_text(f"kind: {kind}\ncores: 1\nmemory: 1GiB\n")
    (tmp_path / "bin").mkdir()
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    command = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--launcher"]
    done = subprocess.run(
        [*command, "p.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: p.yaml: {submit} not found on the PATH: a {kind} profile submits its worker"
        f" jobs with it (run the search where {submit} is, e.g. on a login node of the"
        " cluster)"
    )
    assert not (tmp_path / "runs").exists()


def test_ensemble_members_whose_jobs_are_refused_stop_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`supervisor ensemble --launcher` trains members in worker jobs: without the submit
    command, or with every job refused, it waited for workers forever."""
    from tests.ensemble.test_ensemble import cli, search, write_space

    write_space(tmp_path, trials=3)
    assert search(tmp_path, "--no-report").returncode == 0
    (tmp_path / "pbs.yaml").write_text("kind: pbs\ncores: 1\nmemory: 1GiB\ntls: false\n")
    ensemble = ["ensemble", "toy", "--select", "topk", "--size", "2", "--plain"]
    ensemble += ["--launcher", "pbs.yaml"]
    here = [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    monkeypatch.setenv("PATH", os.pathsep.join(here))
    if not shutil.which("qsub"):  # else a PBS or Grid Engine here
        missing = cli(*ensemble, cwd=tmp_path)
        assert missing.returncode == 2, missing.stdout + missing.stderr
        assert "error: pbs.yaml: qsub not found on the PATH" in missing.stderr
    fake_queue(tmp_path / "pbs", monkeypatch, "qsub", REFUSE)
    refused = cli(*ensemble, cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: pbs.yaml: qsub refuses the worker jobs: qsub: Unknown queue (exit 170)"
    )
    assert "Traceback" not in refused.stdout + refused.stderr


def test_a_slurm_controller_away_for_a_while_delays_the_jobs_and_stops_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chained driver job starting while Slurm's controller restarts: the refused
    --test-only ended the search (exit 2) and so did the first refused worker job, with
    no job taken, though the next submission would have been taken."""
    monkeypatch.setattr(submissions, "RETRY_FIRST", 1.0)
    monkeypatch.setattr(submissions, "PENDING_AFTER", 0.0)
    fake_queue(tmp_path / "slurm", monkeypatch, "sbatch", SLURM_AWAY)
    monkeypatch.setenv("FAILS", "3")
    path = tmp_path / "s.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\nmax_jobs: 1\ntls: false\n")
    launcher = load(str(path))
    preflight.batch_jobs(launcher, tmp_path / "run", "away")  # --test-only: timed out
    handle = make_jobqueue(launcher, tmp_path / "run", "away", "127.0.0.1:0")
    assert handle.watch is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while calls(tmp_path / "slurm") < 4 and time.monotonic() < deadline:
            assert handle.watch(lines.append) is None, lines
            time.sleep(0.2)
        time.sleep(1.5)
        assert handle.watch(lines.append) is None, lines
    finally:
        handle.client.close()
        handle.cluster.close()
    assert calls(tmp_path / "slurm") == 4  # refused twice, asked again 1 s then 2 s later
    refused = [line for line in lines if "refused a worker job" in line]
    assert refused == [
        f"{path}: sbatch refused a worker job: sbatch: error: Batch job submission failed:"
        " Socket timed out on send/recv operation (exit 1) (an error of the batch system"
        " that passes); asked again in 1 s"
    ]
    assert any(line.startswith("Waiting for workers: 1 job(s) taken by sbatch") for line in lines)


def test_a_batch_system_away_too_long_stops_the_search_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporary errors are asked again for TEMPORARY_FOR seconds, not forever."""
    monkeypatch.setattr(submissions, "RETRY_FIRST", 0.5)
    monkeypatch.setattr(submissions, "TEMPORARY_FOR", 3.0)
    fake_queue(tmp_path / "slurm", monkeypatch, "sbatch", SLURM_AWAY)
    monkeypatch.setenv("FAILS", "1000")
    path = tmp_path / "s.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\nmax_jobs: 1\ntls: false\n")
    handle = make_jobqueue(load(str(path)), tmp_path / "run", "away", "127.0.0.1:0")
    assert handle.watch is not None
    started = time.monotonic()
    try:
        stop = None
        while stop is None and time.monotonic() < started + 30:
            stop = handle.watch(print)
            time.sleep(0.2)
    finally:
        handle.client.close()
        handle.cluster.close()
    assert time.monotonic() - started >= 3.0
    assert stop == (
        f"{path}: sbatch refuses the worker jobs: sbatch: error: Batch job submission failed:"
        " Socket timed out on send/recv operation (exit 1), for 0 min"
    )
    assert calls(tmp_path / "slurm") >= 3  # asked again meanwhile


def test_a_second_interrupt_as_a_half_started_batch_cluster_closes_leaves_no_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C as the cluster starts waits for it to be whole, then closes it. Pressed
    again during that close, it cut the close short: the scheduler process ran on for the
    interpreter's life (a notebook's kernel), its jobs never cancelled."""
    import signal

    import psutil
    from distributed.deploy.spec import SpecCluster

    from supervisor.clusters.scheduler_process import SchedulerProcess

    fake_queue(tmp_path / "pbs", monkeypatch, "qsub", LIMIT)
    path = tmp_path / "p.yaml"
    path.write_text("kind: pbs\ncores: 1\nmemory: 1GiB\nmin_jobs: 1\ntls: false\n")
    started, close = SchedulerProcess.start, SpecCluster.close
    closes: list[SpecCluster] = []

    async def start_then_interrupt(self: SchedulerProcess) -> None:
        await started(self)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the cluster starts

    def interrupted_close(self: SpecCluster, *args: Any, **kwargs: Any) -> Any:
        if not closes:
            closes.append(self)
            os.kill(os.getpid(), signal.SIGINT)  # and again as it closes
        return close(self, *args, **kwargs)

    monkeypatch.setattr(SchedulerProcess, "start", start_then_interrupt)
    monkeypatch.setattr(SpecCluster, "close", interrupted_close)
    before = {q.pid for q in psutil.Process().children(recursive=True)}
    with pytest.raises(KeyboardInterrupt):
        make_jobqueue(load(str(path)), tmp_path / "run", "interrupted", "127.0.0.1:0")
    assert closes
    new = [q for q in psutil.Process().children(recursive=True) if q.pid not in before]
    _, alive = psutil.wait_procs(new, timeout=20)
    assert not alive, [q.pid for q in alive]


def test_a_run_directory_a_job_script_cannot_hold_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --runs-dir with a space went into the worker jobs' `#SBATCH -e` line and their
    `--tls-ca-file` argument split in two: every worker failed at start, and the search
    waited for workers with no word of why."""
    from supervisor.errors import UserError

    fake_queue(tmp_path / "slurm", monkeypatch, "sbatch", "#!/bin/bash\ncat > /dev/null\n")
    path = tmp_path / "s.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\n")
    run_dir = tmp_path / "my runs" / "s"
    with pytest.raises(UserError, match=r"the worker jobs' logs and TLS files go under") as info:
        preflight.batch_jobs(load(str(path)), run_dir, "s")
    assert str(info.value).startswith(f"{run_dir}: ") and "\n" not in str(info.value)
    assert not (tmp_path / "my runs").exists()
    # Logs and TLS files elsewhere: the run directory is in no job script.
    path.write_text(f"kind: slurm\ncores: 1\nmemory: 1GiB\ntls: false\nlog_directory: {tmp_path}")
    preflight.batch_jobs(load(str(path)), run_dir, "s")
