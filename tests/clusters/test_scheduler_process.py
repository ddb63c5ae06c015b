"""The local cluster's scheduler runs in a process of its own, and never outlives its
driver (supervisor.clusters.scheduler_process)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dask
import optuna
import psutil
import pytest
from optuna.trial import TrialState

from supervisor.clusters.adaptive import Renewing
from supervisor.clusters.launch import open_cluster
from supervisor.clusters.scheduler_process import SchedulerProcess
from tests.faultkit import journal_url, kill_session, start_search, toy_space, wait_for

CHILD = "supervisor.clusters.scheduler_process"


def _schedulers(pid: int) -> list[psutil.Process]:
    return [
        p for p in psutil.Process(pid).children(recursive=True) if CHILD in " ".join(p.cmdline())
    ]


def _listening(proc: psutil.Process) -> set[int]:
    return {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == "LISTEN"}


def test_the_scheduler_is_a_child_process_with_the_drivers_dask_settings() -> None:
    callers = {  # a notebook's own settings (Dask's defaults, and one of its own)
        "distributed.scheduler.worker-ttl": "7 minutes",
        "distributed.scheduler.allowed-failures": 3,
        "distributed.scheduler.work-stealing": True,
    }
    with dask.config.set(callers):
        with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
            (child,) = _schedulers(os.getpid())
            port = int(str(handle.cluster.scheduler_address).rsplit(":", 1)[1])
            assert port in _listening(child)
            assert port not in _listening(psutil.Process())
            assert handle.client.submit(lambda: 6 * 7).result(timeout=60) == 42

            def settings(dask_scheduler: object) -> tuple[object, ...]:
                get = dask.config.get
                return (
                    get("distributed.scheduler.worker-ttl"),
                    get("distributed.scheduler.allowed-failures"),  # clusters.handle
                    get("distributed.scheduler.work-stealing"),
                    os.getpid(),
                )

            found = handle.client.run_on_scheduler(settings)
            assert found == ("7 minutes", 0, False, child.pid)
            assert handle.dashboard and str(handle.dashboard).startswith("http://127.0.0.1:")
        child.wait(timeout=30)  # closed with its cluster
        # The caller's settings are its own again: its own clusters do not inherit ours.
        assert {k: dask.config.get(k) for k in callers} == callers


def test_the_scheduler_stops_when_its_driver_is_killed(tmp_path: Path) -> None:
    proc = start_search(toy_space(tmp_path, 10_000, delay=0.5), "--workers", "1")
    try:
        deadline = time.monotonic() + 120
        while not (children := _schedulers(proc.pid)) or not _listening(children[0]):
            assert proc.poll() is None and time.monotonic() < deadline, "no scheduler"
            time.sleep(0.2)
        (child,) = children
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: nothing closes the cluster
        child.wait(timeout=30)  # raises psutil.TimeoutExpired if it outlives its driver
    finally:
        kill_session(proc)


def started(study: optuna.Study) -> bool:
    """A trial runs on a worker: its start is stored (``inflight.START_RECORD_DELAY``)."""
    return any(
        t.state == TrialState.RUNNING and "started" in t.user_attrs
        for t in study.get_trials(deepcopy=False)
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_group_leaves_the_driver_to_record_its_trials(
    tmp_path: Path, signum: int
) -> None:
    """A terminal's Ctrl-C reaches every process of its group, Slurm signals every process
    of a job: the scheduler died first and the running trials were recorded as lost
    workers (an attempt each; the third time "died on all attempts", a model failure)."""
    space = toy_space(tmp_path, 2, delay=20.0)
    proc = start_search(space, "--workers", "1")
    try:
        deadline = time.monotonic() + 120
        while not (children := _schedulers(proc.pid)) or not _listening(children[0]):
            assert proc.poll() is None and time.monotonic() < deadline, "no scheduler"
            time.sleep(0.2)
        # Its trial runs (its start stored): a fixed 4 s, on a loaded machine, sent the
        # signal while the worker was still starting (a "Nanny failed to start" traceback).
        wait_for(journal_url(space), "toy", started, timeout=120)
        os.killpg(proc.pid, signum)
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_session(proc)
    assert "failed (interrupted)" in out, out
    assert "infrastructure" not in out and "Traceback" not in out, out


def test_a_scheduler_that_cannot_start_says_why_and_leaves_no_process(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    log = tmp_path / "scheduler.log"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    scheduler = SchedulerProcess(log_file=str(log), host="127.0.0.1", port=port, protocol="tcp://")
    with pytest.raises(RuntimeError, match=r"did not start: .*(in use|port)") as error:
        asyncio.run(scheduler.start())
    taken.close()
    assert len(str(error.value)) < 2500 and "\n" not in str(error.value)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


def test_trial_durations_reach_the_renewal_from_the_scheduler_process() -> None:
    """Batch clusters renew jobs ahead by the longest trial: its duration is measured on
    the scheduler (another process) and fetched at each adaptive step."""

    class Durations:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def trial_finished(self, seconds: float) -> None:
            self.seen.append(seconds)

    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        cluster, client = handle.cluster, handle.client
        cluster.renewal = Durations()
        renewing = Renewing(cluster, interval="1h")  # steps only when called here
        try:
            cluster.sync(renewing._trial_durations)  # the first step registers the plugin
            assert cluster.renewal.seen == []
            client.submit(time.sleep, 0.3, key="trial-7-driver").result(timeout=60)
            client.submit(time.sleep, 0.0, key="other-1").result(timeout=60)
            cluster.sync(renewing._trial_durations)
            assert len(cluster.renewal.seen) == 1 and 0.3 <= cluster.renewal.seen[0] < 5
            cluster.sync(renewing._trial_durations)
            assert len(cluster.renewal.seen) == 1, "each duration is told once"
        finally:
            renewing.stop()


def test_scale_down_closes_idle_workers_never_one_running_a_trial() -> None:
    """Given a target below the workers running trials (clamped at max_jobs while a
    renewed job and its replacement overlap), Adaptive closed busy workers after the idle
    ones: their trials started again from scratch, and after three such starts failed as
    OutlivesItsWorkers, blamed on the model."""
    from distributed import Event

    with open_cluster(workers=3, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        cluster, client = handle.cluster, handle.client
        cluster.renewal = None
        renewing = Renewing(cluster, interval="1h")  # steps only when called here
        release = Event("release-trials", client=client)
        try:
            cluster.sync(renewing._trial_durations)  # registers the plugin
            running = [client.submit(release.wait, 120, key=f"trial-{n}-driver") for n in range(2)]
            deadline = time.monotonic() + 60
            while len(busy := client.processing()) < 3 or sum(map(len, busy.values())) < 2:
                assert time.monotonic() < deadline, busy
                time.sleep(0.1)
            idle = {a for a, keys in client.processing().items() if not keys}
            assert len(idle) == 1
            # The target Adaptive would scale down to: one worker of three.
            closed = cluster.sync(renewing.workers_to_close, 1)
            names = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
            assert {names[n] for n in closed} == idle
            release.set()
            assert all(f.result(timeout=60) for f in running)
        finally:
            release.set()
            renewing.stop()


def test_scale_down_spares_every_process_of_a_job_running_a_trial() -> None:
    """Jobs of two worker processes, one running a trial: Dask's own target kept the busy
    process and closed the three idle ones, among them its sibling, and closing any
    process of a job cancels the whole job (dask-jobqueue scales down by job), so the
    trial went with it."""
    from distributed import Client, Event, Scheduler, SpecCluster, Worker

    from supervisor.clusters.adaptive import TrialDurations

    workers = {
        f"job-{j}-{i}": {"cls": Worker, "options": {"nthreads": 1}} for j in (1, 2) for i in (0, 1)
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster) as client:
        client.wait_for_workers(4)
        client.register_plugin(TrialDurations(processes=2), name="trial-durations")
        release = Event("release-trial", client=client)
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        on = [a for a, name in names.items() if name == "job-1-0"]
        trial = client.submit(release.wait, 120, key="trial-1-driver", workers=on)
        try:
            deadline = time.monotonic() + 60
            while not client.processing(on)[on[0]]:
                assert time.monotonic() < deadline
                time.sleep(0.1)

            def closed(dask_scheduler: Any) -> list[str]:  # what Adaptive's step closes
                target = dask_scheduler.adaptive_target()
                return dask_scheduler.workers_to_close(target=target, attribute="name")

            assert sorted(client.run_on_scheduler(closed)) == ["job-2-0", "job-2-1"]
        finally:
            release.set()
        assert trial.result(timeout=60)


def test_a_second_campaign_in_the_same_interpreter_starts() -> None:
    """The settings are undone when a cluster closes; undone before Dask's distributed
    defaults were loaded, they took the defaults with them (KeyError: 'comm' next time)."""
    code = (
        "from supervisor.clusters.launch import open_cluster\n"
        "for _ in range(2):\n"
        "    with open_cluster(workers=1, threads=1, scheduler=None, dashboard=':0') as h:\n"
        "        assert h.client.submit(lambda: 42).result(timeout=60) == 42\n"
        "print('two clusters')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert done.stdout.strip() == "two clusters", done.stderr[-2000:]


def test_workers_keep_the_tensorflow_log_level_the_user_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TF_CPP_MIN_LOG_LEVEL=0, set to see TensorFlow's device lines in the worker logs,
    was replaced by 2 in every worker."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        found = handle.client.run(lambda: os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
    assert list(found.values()) == ["0"]
