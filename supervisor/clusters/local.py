"""The default cluster: Dask worker processes on this machine, listening on loopback only."""

from __future__ import annotations

import logging
import os

from supervisor.clusters.handle import ClusterHandle
from supervisor.execution.node import thread_environment


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_local(*, workers: int | None, threads: int | None, dashboard: str) -> ClusterHandle:
    from distributed import Client, LocalCluster

    cores = usable_cores()
    n_workers = workers or max(1, cores // (threads or 1))
    per_trial = threads or max(1, cores // n_workers)
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,  # one trial at a time per worker process
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=dashboard,
        silence_logs=logging.ERROR,
        env=thread_environment(per_trial),
    )
    client = Client(cluster)
    desc = f"LocalCluster: {n_workers} workers x 1 trial, {per_trial} thread(s) per trial"
    return ClusterHandle(client, cluster, n_workers, per_trial, desc)
