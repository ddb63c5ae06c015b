"""A whole campaign inside one MPI allocation, with dask-mpi.

``mpiexec -n N supervisor search SPACE --launcher mpi``: every rank runs the same command.
Rank 0 becomes the Dask scheduler, ranks 2.. one worker each (one trial at a time) and rank
1 goes on as the driver. Scheduler, workers and driver talk TLS with a certificate that rank
0 makes for this run and hands to the other ranks over MPI, so it is never written to disk.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from supervisor.clusters import scratch
from supervisor.clusters.addresses import on_loopback
from supervisor.clusters.handle import ClusterHandle, configure_dask
from supervisor.clusters.profile import Launcher, TlsFiles
from supervisor.errors import UserError
from supervisor.execution.node import drop_storage_secrets, thread_environment

MIN_RANKS = 3  # scheduler, driver, one worker
DRIVER_RANK = 1  # dask-mpi's client rank
# What a terminal (Ctrl-C), scancel or a walltime (SIGTERM) and a walltime warning (SIGUSR1)
# send to every rank: the driver's to stop the campaign on (``supervisor.study.signals``).
STOPPING = ("SIGINT", "SIGTERM", "SIGUSR1")


def serve_unless_driver(launcher: Launcher, dashboard: str) -> None:
    """Start the Dask cluster across the ranks. Returns on the driver rank only; the other
    ranks serve as scheduler or worker until the driver ends, then exit the process."""
    import dask
    import dask_mpi
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.Get_size() < MIN_RANKS:
        raise UserError(
            f"{launcher.file}: the mpi launcher needs at least {MIN_RANKS} MPI ranks (scheduler,"
            f" driver, workers), got {comm.Get_size()}; run: mpiexec -n 4 supervisor search ..."
        )
    if comm.Get_rank() != DRIVER_RANK:
        # The driver stops the campaign cleanly, then ends the other ranks (dask-mpi). The
        # scheduler rank that died of the signal first made mpiexec kill the driver half-way:
        # running trials were left unrecorded, and the search exited with the signal.
        for name in STOPPING:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        # mpiexec gave every rank the driver's environment: only the driver opens the
        # storage, and a worker rank's trials would inherit its password.
        drop_storage_secrets()
    # The scheduler is rank 0's, not started by open_cluster: it needs the campaign's
    # settings too (a lost worker's trial goes back to the driver; no work stealing).
    configure_dask()
    tls = _tls_config(launcher) if comm.Get_rank() == 0 else None
    tls = comm.bcast(tls, root=0)
    if tls:
        dask.config.set(tls)  # every Scheduler, Worker and Client of this rank uses it
    if comm.Get_rank() != DRIVER_RANK and not scratch.configured():
        # dask-mpi gives rank 0's scheduler no local directory: the configuration does.
        dask.config.set({"temporary-directory": _private_scratch()})
    # Dask logs every start and shutdown step at INFO on every rank, as LocalCluster would
    # without silence_logs.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    threads = int(launcher.extra.get("threads", 1))
    os.environ.update(thread_environment(threads))  # before a worker rank imports a framework
    kw = launcher.keywords
    dask_mpi.initialize(
        interface=kw.get("interface"),
        nthreads=1,  # a worker runs one trial at a time
        local_directory=kw.get("local_directory"),
        memory_limit=kw.get("memory_limit", "auto"),
        # --dashboard :PORT on rank 0's loopback, as other clusters: it bound every
        # interface. The profile's ':PORT' still does, as launchers/README.md says.
        dashboard_address=launcher.dashboard or on_loopback(dashboard),
        protocol="tls://" if tls else None,
        # A worker's HTTP server (metrics, health) listened on every interface of its
        # node, open to the network: loopback only, as for batch workers.
        worker_options={"dashboard_address": "127.0.0.1:0"},
        exit=True,
    )


def _private_scratch() -> str:
    """A folder of this rank's own for its scheduler's or worker's scratch space, removed
    when the rank exits (``scratch``: not a $TMPDIR/dask-scratch-space another user of
    the node may have made)."""
    import atexit
    import shutil
    import tempfile

    private = tempfile.mkdtemp(prefix="supervisor-dask-")
    atexit.register(shutil.rmtree, private, True)
    return private


def connect_mpi(launcher: Launcher, dashboard: str) -> ClusterHandle:
    """The driver rank's client to the cluster ``serve_unless_driver`` started."""
    import dask
    from distributed import Client
    from mpi4py import MPI

    address = dask.config.get("scheduler-address", None)
    if not address:
        raise UserError(f"{launcher.file}: the mpi launcher runs under mpiexec only")
    workers = MPI.COMM_WORLD.Get_size() - 2
    client = Client(address, timeout="60s")
    client.wait_for_workers(workers, timeout=120)
    threads = int(launcher.extra.get("threads", 1))
    secure = "on" if address.startswith("tls://") else "off"
    desc = (
        f"MPI ({launcher.file}): {workers} worker rank(s) x 1 trial, {threads} thread(s) per"
        f" trial; TLS {secure}, scheduler {address}"
    )
    return ClusterHandle(
        client, None, workers, threads, desc, _dashboard(client, launcher.dashboard or dashboard)
    )


def _dashboard(client: Any, configured: str) -> str | None:
    """Rank 0's dashboard where it listens (loopback by default), not at the scheduler's
    address, which Dask would show."""
    port = client.scheduler_info().get("services", {}).get("dashboard")
    host = configured.rpartition(":")[0]
    if port is None or not host:
        return None
    return f"http://{host}:{port}/status (on the node of MPI rank 0)"


def _tls_config(launcher: Launcher) -> dict[str, Any] | None:
    from distributed.security import Security

    from supervisor.clusters.security import in_memory_config, security_from_files

    if isinstance(launcher.tls, TlsFiles):
        return in_memory_config(security_from_files(launcher.tls))
    return in_memory_config(Security.temporary()) if launcher.tls else None
