"""Attach to a Dask scheduler that is already running (e.g. started by a batch script)."""

from __future__ import annotations

from supervisor.clusters.handle import ClusterHandle
from supervisor.errors import UserError


def connect_existing(address: str, threads: int | None) -> ClusterHandle:
    from distributed import Client

    try:
        client = Client(address, timeout="30s")
    except OSError as exc:
        raise UserError(f"--scheduler {address}: cannot connect ({exc})") from None
    client.wait_for_workers(1, timeout=300)
    slots = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    return ClusterHandle(client, None, slots, threads or 1, f"scheduler {address}: {slots} slots")
