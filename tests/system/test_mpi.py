"""A whole campaign inside one MPI allocation: `mpiexec -n 4 supervisor search --launcher mpi`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from supervisor.study.storage import load_study

pytestmark = pytest.mark.mpi
TOY = "tests.toy_benchmark:ToyBenchmark"
# The mpich wheel puts mpiexec beside the interpreter of the virtual environment.
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def mpi_command(tmp_path: Path, ranks: int, delay: float = 0.1) -> list[str]:
    (tmp_path / "toy.yaml").write_text(
        f'study: mpi\nbenchmark: {{name: "{TOY}", options: {{delay: {delay}}}}}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 6, epochs: 2}\nsampler: random\nseed: 4\n"
    )
    assert MPIEXEC, "mpiexec comes with the mpich wheel, a dependency"
    command = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "supervisor.cli", "search"]
    return [
        *command,
        "toy.yaml",
        "--launcher",
        "mpi",
        "--plain",
        "--no-report",
        "--dashboard",
        ":0",
    ]


def mpi_search(tmp_path: Path, ranks: int) -> subprocess.CompletedProcess[str]:
    # No stdin: mpiexec forwards it to rank 0 and aborts when a pipe is not read fast enough.
    return subprocess.run(
        mpi_command(tmp_path, ranks),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_four_ranks_run_a_campaign_scheduler_driver_and_two_workers(tmp_path: Path) -> None:
    result = mpi_search(tmp_path, 4)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("Finished trials: 6 of 6 requested") == 1  # one driver rank
    assert "MPI (" in out and "2 worker rank(s) x 1 trial" in out
    assert "TLS on, scheduler tls://" in out
    run_dir = tmp_path / "runs" / "mpi"
    trials = load_study(f"journal:{run_dir}/journal.log", "mpi").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6
    workers = {t.user_attrs["worker"] for t in complete}
    assert len(workers) == 2 and all(w.startswith("tls://") for w in workers)
    assert not (run_dir / "tls").exists()  # the certificate went over MPI, not to disk


def test_too_few_ranks_is_a_one_line_error(tmp_path: Path) -> None:
    result = mpi_search(tmp_path, 2)
    assert result.returncode != 0
    assert "the mpi launcher needs at least 3 MPI ranks" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_sigterm_to_every_rank_stops_the_campaign_cleanly(tmp_path: Path) -> None:
    """What scancel, a walltime or a Ctrl-C do: every rank gets the signal. The scheduler
    rank died of it first and mpiexec killed the driver half-way (BAD TERMINATION, exit
    15): the running trials were never recorded as interrupted."""
    import psutil

    log = tmp_path / "out.txt"
    with log.open("w") as out:
        mpiexec = subprocess.Popen(
            mpi_command(tmp_path, 4, delay=2.0),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while " complete: " not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            ranks = [
                p
                for p in psutil.Process(mpiexec.pid).children(recursive=True)
                if "supervisor.cli" in " ".join(p.cmdline())
            ]
            assert len(ranks) == 4
            for rank in ranks:
                rank.send_signal(signal.SIGTERM)
            mpiexec.wait(timeout=120)
        finally:
            if mpiexec.poll() is None:
                mpiexec.kill()
    out_text = log.read_text()
    assert mpiexec.returncode == 143, out_text
    assert "BAD TERMINATION" not in out_text
    assert "Stopped: SIGTERM received" in out_text
    assert not [p for p in ranks if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    trials = load_study(f"journal:{tmp_path}/runs/mpi/journal.log", "mpi").get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.user_attrs.get("error") == "stopped by SIGTERM"]
    assert interrupted, [(t.state, t.user_attrs) for t in trials]


DRIVER_SCRIPT = """
import dask
from supervisor.clusters import profile
from supervisor.clusters.launch import enter_allocation, open_cluster

launcher = profile.load("mpi")
enter_allocation(launcher, "127.0.0.1:0")  # every rank but the driver serves here
with open_cluster(
    workers=None, threads=None, scheduler=None, dashboard="127.0.0.1:0", launcher=launcher
) as handle:
    get = lambda dask_scheduler: (
        dask_scheduler.allowed_failures, "stealing" in dask_scheduler.extensions
    )
    print("scheduler", *handle.client.run_on_scheduler(get), flush=True)
"""


def test_the_scheduler_rank_has_the_campaigns_dask_settings(tmp_path: Path) -> None:
    """A lost worker's trial goes back to the driver (no retries by Dask), and trials are
    not stolen: the scheduler rank, which open_cluster does not start, was left with
    Dask's defaults (3 silent retries, work stealing on)."""
    (tmp_path / "driver.py").write_text(DRIVER_SCRIPT)
    assert MPIEXEC
    result = subprocess.run(
        [MPIEXEC, "-n", "3", sys.executable, "driver.py"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "scheduler 0 False" in result.stdout, result.stdout + result.stderr


def test_a_dashboard_without_a_host_listens_on_loopback_only(tmp_path: Path) -> None:
    """``--dashboard :0``: rank 0's dashboard bound every interface of its node (the link
    printed said 127.0.0.1), open to the network as the README says it is not."""
    from tests.clusters.test_dashboard import _listening

    search = subprocess.Popen(
        mpi_command(tmp_path, 4, delay=3.0),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert search.stdout is not None
        link = next((line for line in search.stdout if "Dask dashboard:" in line), "")
        port = int(link.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else
        rest = search.stdout.read()
    finally:
        search.wait(timeout=240)
    assert search.returncode == 0, rest


def test_the_ranks_take_no_scratch_folder_another_user_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 0's scheduler and the worker ranks made their Dask scratch space in the
    node's $TMPDIR/dask-scratch-space whoever had made it (and put it on their
    sys.path): another user's job on the node could leave modules there."""
    from tests.clusters.test_scratch import PLANTED, shared_tmp

    shared, trap = shared_tmp(tmp_path, monkeypatch)
    result = mpi_search(tmp_path, 4)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Finished trials: 6 of 6 requested" in result.stdout
    assert sorted(os.listdir(trap)) == [PLANTED]
    assert sorted(os.listdir(shared)) == ["dask-scratch-space"]  # the ranks' removed


HTTP_SCRIPT = """
from supervisor.clusters import profile
from supervisor.clusters.launch import enter_allocation, open_cluster

launcher = profile.load("mpi")
enter_allocation(launcher, "127.0.0.1:0")  # every rank but the driver serves here
with open_cluster(
    workers=None, threads=None, scheduler=None, dashboard="127.0.0.1:0", launcher=launcher
) as handle:
    hosts = lambda dask_worker: sorted(
        s.getsockname()[0] for s in dask_worker.http_server._sockets.values()
    )
    print("worker http", sorted(handle.client.run(hosts).values()), flush=True)
"""


def test_the_worker_ranks_http_servers_listen_on_loopback_only(tmp_path: Path) -> None:
    """Each worker rank's HTTP server (its metrics and health) listened on every interface
    of its node (0.0.0.0 and ::), open to the network; batch workers' are on loopback."""
    (tmp_path / "driver.py").write_text(HTTP_SCRIPT)
    assert MPIEXEC
    result = subprocess.run(
        [MPIEXEC, "-n", "4", sys.executable, "driver.py"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    expected = "worker http [['127.0.0.1'], ['127.0.0.1']]"
    assert expected in result.stdout, result.stdout + result.stderr
