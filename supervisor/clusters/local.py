"""The default cluster: Dask worker processes on this machine, on loopback, over TLS.

Loopback alone keeps other machines out, not other users of this one: any local account
could connect to a plain-TCP scheduler and run code on the workers as the campaign's
user. Scheduler, workers and client therefore talk TLS with a certificate made for this
cluster (``security.temporary_credentials``): a client without it is refused. The
dashboard stays plain HTTP on 127.0.0.1 (read-only views; see the README).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from supervisor.benchmarks.cores import usable_cores
from supervisor.clusters import scratch
from supervisor.clusters.handle import ClusterHandle
from supervisor.clusters.security import security_from_files, temporary_credentials
from supervisor.execution.gpu_share import node_gpus, slot_environment
from supervisor.execution.node import thread_environment
from supervisor.execution.worker_log import LOG_ENV
from supervisor.study.signals import interrupt_held

logger = logging.getLogger(__name__)


def local_size(workers: int | None, threads: int | None) -> tuple[int, int]:
    """(worker processes, threads per trial) of a local cluster; by default every core."""
    cores = usable_cores()
    n_workers = workers or max(1, cores // (threads or 1))
    return n_workers, threads or max(1, cores // n_workers)


def make_local(
    *, workers: int | None, threads: int | None, dashboard: str, log: Path | None = None
) -> ClusterHandle:
    """``log``: where the workers' output goes from their first trial on
    (``execution.worker_log``), else to this process's stderr."""
    from distributed import Client, Nanny, SpecCluster
    from distributed.worker_memory import parse_memory_limit

    from supervisor.clusters.scheduler_process import SchedulerProcess

    cores = usable_cores()
    n_workers, per_trial = local_size(workers, threads)
    gpus = node_gpus(os.environ)
    credentials = temporary_credentials()
    cluster = client = None
    try:
        security = security_from_files(credentials.files)
        # What LocalCluster makes, but with the scheduler in a process of its own
        # (supervisor.clusters.scheduler_process): not sharing the driver's GIL.
        scheduler = {
            "cls": SchedulerProcess,
            "options": {
                "security": security,
                "log_file": str(credentials.folder / "scheduler.log"),
                "host": "127.0.0.1",
                "port": 0,
                "protocol": "tls://",
                "dashboard_address": dashboard,
            },
        }
        worker = {
            "cls": Nanny,
            "options": {
                "nthreads": 1,  # one trial at a time per worker process
                "host": "127.0.0.1",
                "protocol": "tls://",
                "security": security,
                "dashboard": False,
                "memory_limit": parse_memory_limit("auto", 1, n_workers, logger=logger),
                # Not $TMPDIR/dask-scratch-space, which another user can make first
                # (``scratch``): the nanny puts it on the driver's sys.path.
                "local_directory": scratch.local_directory(credentials.folder),
                "silence_logs": logging.ERROR,
                "env": {
                    **thread_environment(per_trial),
                    **({LOG_ENV: str(log)} if log else {}),
                },
                "preload": ["supervisor.clusters.worker_signals"],
            },
        }
        with interrupt_held():  # a Ctrl-C now closes the cluster once it is whole
            cluster = SpecCluster(
                scheduler=scheduler,
                workers={i: _on_gpu(worker, i, n_workers, gpus) for i in range(n_workers)},
                worker=worker,
                security=security,
                silence_logs=logging.ERROR,
                name="supervisor",
            )
            client = Client(cluster, security=security)
    except BaseException:
        # A Ctrl-C during this close waits for it, as in open_cluster: cut short, it left
        # the scheduler and workers running for the interpreter's life (a notebook's kernel).
        with interrupt_held():
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            credentials.remove()
        raise
    desc = (
        f"local cluster: {n_workers} workers x 1 trial, {per_trial} thread(s) per trial;"
        f" scheduler in a process of its own; TLS on, scheduler {cluster.scheduler_address}"
    )
    if len(gpus) > 1:
        desc += f"; workers spread over GPUs {','.join(gpus)}"
    if n_workers * per_trial > cores:  # the user's choice, said: trials then share cores
        desc += (
            f"; oversubscribed: {n_workers * per_trial} threads on {cores} usable cores,"
            " so trials slow each other down"
        )
    return ClusterHandle(
        client, cluster, n_workers, per_trial, desc, after_close=credentials.remove, worker_log=log
    )


def _on_gpu(spec: dict[str, Any], index: int, workers: int, gpus: list[str]) -> dict[str, Any]:
    """Worker ``index``'s spec: on a node of several GPUs its own (``gpu_share``); every
    worker's trials took the first GPU while the others idled."""
    env = {**spec["options"]["env"], **slot_environment(index, workers, gpus, os.environ)}
    return {**spec, "options": {**spec["options"], "env": env}}
