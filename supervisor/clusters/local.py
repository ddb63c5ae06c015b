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

from supervisor.clusters.handle import ClusterHandle
from supervisor.clusters.security import security_from_files, temporary_credentials
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
    credentials = temporary_credentials()
    cluster = None
    try:
        security = security_from_files(credentials.files)
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,  # one trial at a time per worker process
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            protocol="tls://",
            security=security,
            dashboard_address=dashboard,
            silence_logs=logging.ERROR,
            env=thread_environment(per_trial),
        )
        client = Client(cluster, security=security)
    except BaseException:
        if cluster is not None:
            cluster.close()
        credentials.remove()
        raise
    desc = (
        f"LocalCluster: {n_workers} workers x 1 trial, {per_trial} thread(s) per trial;"
        f" TLS on, scheduler {cluster.scheduler_address}"
    )
    return ClusterHandle(
        client, cluster, n_workers, per_trial, desc, after_close=credentials.remove
    )
