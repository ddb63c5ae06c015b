"""Attach to a Dask scheduler that is already running (e.g. started by a batch script)."""

from __future__ import annotations

from supervisor.clusters.addresses import check_scheduler
from supervisor.clusters.handle import ClusterHandle
from supervisor.errors import UserError

WORKER_WAIT = 300.0  # seconds for a first worker to join (batch workers start late)


def connect_existing(address: str, threads: int | None) -> ClusterHandle:
    from distributed import Client

    check_scheduler(address)  # a web server or a closed port: one line, in seconds
    try:
        client = Client(address, timeout="10s")
    except (OSError, ValueError, MemoryError) as exc:  # TimeoutError is an OSError
        detail = " ".join(str(exc).split())[:300]
        raise UserError(
            f"--scheduler {address}: cannot connect ({type(exc).__name__}: {detail})"
        ) from None
    if not client.scheduler_info().get("workers"):
        print(f"Waiting up to {WORKER_WAIT:g} s for a worker to join {address}", flush=True)
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            client.close()
            raise UserError(
                f"--scheduler {address}: no worker joined within {WORKER_WAIT:g} s"
            ) from None
    slots = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    return ClusterHandle(client, None, slots, threads or 1, f"scheduler {address}: {slots} slots")
