"""Where trials run: one small module per cluster kind, each ``make_cluster(...)``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client


@dataclass
class ClusterHandle:
    client: Client
    cluster: Any  # a distributed Cluster we own, or None for an existing scheduler
    slots: int  # trials that can run at once
    threads: int  # cores each trial may use
    description: str

    @property
    def dashboard(self) -> str | None:
        link = self.client.dashboard_link
        return str(link) if link else None


def configure_dask() -> None:
    """Settings every campaign relies on, applied before any cluster starts."""
    import dask

    dask.config.set(
        {
            # A worker that dies makes its task fail at once; the driver, which knows
            # trials, re-runs it with the same parameters and records the failure.
            "distributed.scheduler.allowed-failures": 0,
            # Trials are long and never stolen half-way; keep placement predictable.
            "distributed.scheduler.work-stealing": False,
        }
    )


@contextlib.contextmanager
def open_cluster(
    *, workers: int | None, threads: int | None, scheduler: str | None, dashboard: str
) -> Iterator[ClusterHandle]:
    configure_dask()
    if scheduler:
        from supervisor.clusters.existing import connect_existing

        handle = connect_existing(scheduler, threads)
    else:
        from supervisor.clusters.local import make_local

        handle = make_local(workers=workers, threads=threads, dashboard=dashboard)
    try:
        yield handle
    finally:
        with contextlib.suppress(Exception):
            handle.client.close()
        if handle.cluster is not None:
            with contextlib.suppress(Exception):
                handle.cluster.close()
