"""Tools of the Slurm tests: the 4-node test cluster of tests/system/slurm.sh, campaigns of
the toy benchmark run on it as the user runs them, and the faults injected into its nodes
and jobs (a node killed, a job requeued, a node drained).

Campaigns that wreck nodes keep their jobs on ``FOREGROUND`` nodes and run one at a time;
the long campaigns (the driver's job chain, expiring walltimes) run on ``BACKGROUND`` beside
them (tests/system/conftest.py starts them first), which no fault touches.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from supervisor.errors import UserError
from supervisor.study import attrs
from supervisor.study.storage import load_study
from tests import faultkit
from tests.faultkit import Tally

CONF = Path("/etc/slurm/slurm.conf")
STATE = Path("/var/lib/supervisor-slurm")  # slurm.sh's; slurmd-<node>.pid per node
MARK = "# written by supervisor tests/system/slurm.sh"
NODES = ("n1", "n2", "n3", "n4")
BACKGROUND = "n1"
FOREGROUND = ("n2", "n3", "n4")
LIVE = ("idle", "mix", "alloc")
# Campaigns on BACKGROUND (tests/system/conftest.py starts them first):
WALLTIME_BUDGET = 100  # 2-s trials on 2 workers: about 2 walltimes of 1 minute
# 3-s trials on 2 workers: 180 s of trials; a 2-minute link does 55 at most (its warning
# comes 30-60 s before its walltime, its driver starts in 8 s or more): 3 links or more.
CHAIN_BUDGET = 120
# Says whether a trial of the study is the one a test waits for.
TrialTest = Callable[[FrozenTrial, optuna.Study], bool]


def run(*command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def slurm_problem() -> str | None:
    """Why no Slurm can be used here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm here (no sinfo/sbatch); `tests/system/slurm.sh up` installs one"
    try:
        result = run("sinfo", "-h", "-o", "%t", timeout=10)
    except subprocess.TimeoutExpired:
        return "Slurm does not answer: sinfo timed out"
    if result.returncode != 0:
        return f"Slurm does not answer: {result.stderr.strip()}"
    if not {"idle", "mix"} & set(result.stdout.split()):
        return f"no Slurm node can take jobs (node states: {result.stdout.split()})"
    return None


def cluster_problem() -> str | None:
    """Why the Slurm here is not the 4-node cluster of slurm.sh (whose slurmds these tests
    kill and restart on this host), or None."""
    problem = slurm_problem()
    if problem:
        return problem
    if not (CONF.is_file() and MARK in CONF.read_text()):
        return (
            "the Slurm here is not the test cluster of tests/system/slurm.sh (its nodes are"
            " killed and drained by these tests); `tests/system/slurm.sh up` where none runs"
        )
    states = node_states()
    if sorted(states) != list(NODES):
        return f"the test Slurm has nodes {sorted(states)}, not {list(NODES)}: slurm.sh up"
    for node, state in states.items():  # a slurmd gone since (a node killed, not restarted)
        if not slurmd_alive(node) or state.rstrip("*~#!%$@^-") not in LIVE:
            try:
                restart_node(node)
            except (AssertionError, OSError, subprocess.SubprocessError) as exc:
                return f"test Slurm node {node} takes no jobs ({exc}): slurm.sh up"
    return None


def node_states() -> dict[str, str]:
    out = run("sinfo", "-h", "-N", "-o", "%N %t").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


@dataclass
class Job:
    job_id: str
    node: str
    states: list[str] = field(default_factory=list)  # as squeue showed them, in order
    first_running: float | None = None  # when squeue first showed it RUNNING
    last_seen: float = 0.0


def squeue(name: str) -> list[tuple[str, str, str]]:
    """(job id, state, node) of the jobs with this name."""
    out = run("squeue", "-h", "-n", name, "-o", "%i %T %N").stdout
    return [(f[0], f[1], f[2] if len(f) > 2 else "") for f in map(str.split, out.splitlines())]


class JobWatch(threading.Thread):
    """What squeue shows of a campaign's jobs, polled while it runs."""

    def __init__(self, name: str, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.name, self.every = name, every
        self.jobs: dict[str, Job] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.poll()

    def poll(self) -> None:
        now = time.time()
        for job_id, state, node in squeue(self.name):
            job = self.jobs.setdefault(job_id, Job(job_id, node))
            if state == "RUNNING":
                job.node = node  # a requeued job may run again elsewhere
                job.first_running = job.first_running or now
            if not job.states or job.states[-1] != state:
                job.states.append(state)
            job.last_seen = now

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def profile(
    folder: Path, nodes: str, *, jobs: int, walltime: str = "00:10:00", more: str = ""
) -> Path:
    """A launcher profile: ``jobs`` one-core worker jobs kept on ``nodes`` (a constraint on
    the nodes' features, e.g. "n2|n3|n4"), ``jobs`` of them at all times; ``more``: YAML
    lines added."""
    path = folder / "slurm-test.yaml"
    path.write_text(
        "kind: slurm\ncores: 1\nprocesses: 1\nmemory: 1GiB\n"
        f"walltime: '{walltime}'\nmin_jobs: {jobs}\nmax_jobs: {jobs}\n"
        f"job_extra_directives: ['--constraint={nodes}']\n{more}"
    )
    return path


class Campaign:
    """``supervisor search SPACE --launcher PROFILE`` in its own session, logged to a file."""

    def __init__(self, folder: Path, study: str, space: Path, launcher: Path) -> None:
        self.folder, self.study, self.space, self.launcher = folder, study, space, launcher
        self.log = folder / f"{study}.log"
        self.job_name = f"sv-{study}"  # how the campaign names its worker jobs
        self.watch = JobWatch(self.job_name)
        self.proc: subprocess.Popen[str] | None = None

    @classmethod
    def toy(
        cls,
        folder: Path,
        study: str,
        nodes: str,
        *,
        trials: int,
        jobs: int,
        delay: float,
        epochs: int,
        walltime: str = "00:10:00",
        more: str = "",
    ) -> Campaign:
        """``trials`` toy trials of ``epochs`` x ``delay`` seconds on ``jobs`` worker jobs."""
        study = f"{study}-{os.getpid()}"  # its jobs' name: not another session's
        folder = folder / study
        folder.mkdir(exist_ok=True)
        space = faultkit.toy_space(folder, trials, delay=delay, epochs=epochs, study=study)
        launcher = profile(folder, nodes, jobs=jobs, walltime=walltime, more=more)
        return cls(folder, study, space, launcher)

    @property
    def url(self) -> str:
        return faultkit.journal_url(self.space, self.study)

    def start(self) -> Campaign:
        args = faultkit.search_args(self.space, "--launcher", str(self.launcher))
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                args, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT,
                text=True, start_new_session=True,
            )  # fmt: skip
        self.watch.start()
        return self

    def study_now(self) -> optuna.Study | None:
        try:
            return load_study(self.url, self.study)
        except UserError:  # the storage exists a moment before the study in it
            return None

    def wait_for_trial(self, found: TrialTest, timeout: float = 120) -> FrozenTrial:
        """The first trial ``found`` accepts, polling the storage."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            study = self.study_now()
            if study is not None:
                for t in study.get_trials(deepcopy=False):
                    if found(t, study):
                        return t
            time.sleep(0.2)
        raise AssertionError(f"{self.study}: no such trial in {timeout} s\n{self.output()}")

    def finish(self, timeout: float = 240) -> optuna.Study:
        """Wait for the search to end; it must succeed. The study as it ended."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.study}: still running after {timeout} s") from None
        finally:
            self.watch.stop()
        assert code == 0, f"exit {code}\n{self.output()}"
        return load_study(self.url, self.study)

    def job_of(self, worker: str) -> str:
        """The batch job a worker ran in, from the job logs the worker writes."""
        logs = self.folder / "runs" / self.study / "jobs"
        for log in logs.glob(f"{self.job_name}-*.err"):
            if re.search(rf"Start worker at:\s+{re.escape(worker)}\s", log.read_text()):
                return log.stem.rsplit("-", 1)[1]
        raise AssertionError(f"no job log in {logs} names worker {worker}")

    def output(self) -> str:
        return self.log.read_text()[-6000:] if self.log.exists() else ""

    def stop(self) -> None:
        """Kill what is left (after a failed test): the driver's session and the jobs."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.watch.stop()
        run("scancel", "-n", self.job_name)


def running_first_attempt(nodes: tuple[str, ...], seconds_left: float, length: float) -> TrialTest:
    """A test for ``Campaign.wait_for_trial``: a trial running on one of ``nodes``, a first
    attempt, with at least ``seconds_left`` of its ``length`` seconds still to go, after
    at least one trial finished (the campaign's workers are warm)."""

    def found(t: FrozenTrial, study: optuna.Study) -> bool:
        if t.state != TrialState.RUNNING or attrs.ATTEMPT in t.user_attrs:
            return False
        started = t.user_attrs.get(attrs.STARTED)
        return (
            t.user_attrs.get(attrs.HOSTNAME) in nodes
            and started is not None
            and time.time() - float(started) < length - seconds_left
            and faultkit.finished(study) >= 1
        )

    return found


# -- faults -----------------------------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_node(node: str) -> list[int]:
    """kill -9 a node as a power cut would: its slurmd, the slurmstepd of every job step
    on it and every process of those jobs (workers, trial processes). The pids killed."""
    pid_file = STATE / f"slurmd-{node}.pid"
    victims = [int(pid_file.read_text())]
    jobs = set(run("squeue", "-h", "-w", node, "-o", "%i").stdout.split())
    step = re.compile(r"slurmstepd: \[(\d+)\.")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        match = step.match(_cmdline(pid))
        env = _environ(pid)
        if (match and match.group(1) in jobs) or (
            env.get("SLURMD_NODENAME") == node and env.get("SLURM_JOB_ID") in jobs
        ):
            victims.append(pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return victims


def restart_node(node: str) -> None:
    """Start a killed node's slurmd again and wait until the node takes jobs (a node Slurm
    marked down returns by itself: ReturnToService=2)."""
    if not slurmd_alive(node):
        subprocess.run(["slurmd", "-N", node], check=True, timeout=30)
    resume_when_stuck(node)


def slurmd_alive(node: str) -> bool:
    """Whether the node's slurmd runs (a killed one may linger as a zombie here)."""
    try:
        pid = int((STATE / f"slurmd-{node}.pid").read_text())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and f"-N {node}" in _cmdline(pid)


def resume_when_stuck(node: str) -> None:
    """Wait until the node takes jobs, resuming it if it is drained or down (a test that
    failed half-way left it so)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = node_states().get(node, "")
        if state.rstrip("*~#!%$@^-") in LIVE:
            return
        if state.startswith(("drain", "drng", "down", "fail")) and not state.endswith("*"):
            run("scontrol", "update", f"NodeName={node}", "State=RESUME")
        time.sleep(0.5)
    raise AssertionError(f"node {node} does not take jobs again: {node_states()}")


def drain(node: str, reason: str) -> None:
    done = run("scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={reason}")
    assert done.returncode == 0, done.stderr


def requeue(job_id: str) -> None:
    done = run("scontrol", "requeue", job_id)
    assert done.returncode == 0, done.stderr


def restarts(job_id: str) -> int | None:
    """How often Slurm started the job again (requeue), while it still knows the job."""
    out = run("scontrol", "show", "job", "-o", job_id).stdout
    found = re.search(r"\bRestarts=(\d+)", out)
    return int(found.group(1)) if found else None


# -- what a campaign's storage must say -----------------------------------------------


def exact(study: optuna.Study, budget: int, fault: str | None = None, injected: int = 0) -> Tally:
    """The budget exactly, nothing lost, nothing counted twice, every failure with its
    cause and none blamed on its parameters; a ``fault`` goes into the fault table."""
    tally = Tally.of(study)
    finished = faultkit.finished(study)
    if fault is not None:
        faultkit.record(fault, injected, tally.lost, tally.duplicated, finished == budget)
    assert finished == budget and tally.complete == budget, tally.states
    assert tally.lost == 0 and tally.duplicated == 0, tally
    allowed = {"COMPLETE", "FAIL:infrastructure", "FAIL:interrupted"}
    assert set(tally.states) <= allowed, f"a trial blamed or lost: {tally.states}"
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get(attrs.ERROR_TYPE) and t.user_attrs.get(attrs.ERROR), t
    return tally


def failures(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]


def completed_rerun(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """The trial that completed ``trial``'s configuration."""
    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE and faultkit.original(t) == faultkit.original(trial)
    ]
    assert len(done) == 1, (trial.number, [t.number for t in done])
    assert done[0].params == trial.params
    return done[0]


@dataclass
class Chain:
    """A campaign whose driver runs as a chain of batch jobs (`supervisor submit`)."""

    folder: Path
    study: str
    budget: int
    first_job: str

    @property
    def run_dir(self) -> Path:
        return self.folder / "runs" / self.study

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.cli", *args],
            cwd=self.folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
