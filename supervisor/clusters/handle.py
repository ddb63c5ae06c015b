"""What a started cluster gives the driver, and the Dask settings every campaign relies on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from distributed import Client


@dataclass
class ClusterHandle:
    client: Client
    cluster: Any  # a distributed Cluster we own, or None for an existing scheduler
    slots: int  # trials that can run at once
    threads: int  # cores each trial may use
    description: str
    dashboard_link: str | None = None  # where the dashboard really listens, when known
    # Dask resources every trial asks for (GPU jobs: GPU=1, offered by GPU workers only).
    resources: dict[str, float] | None = None
    # Called once the cluster is closed: removes what only it needed (its TLS key files).
    after_close: Callable[[], None] | None = None
    # Asked by the driver each turn (``supervisor.clusters.submissions.Watch``): a line to
    # stop the campaign with (its batch system refuses every job), or None.
    watch: Callable[[Callable[[str], None]], str | None] | None = None
    # Where the workers' output goes (a local cluster's run log), when not their terminal.
    worker_log: Path | None = None
    # Called before the close by a chain's link that its walltime warning stopped: keeps
    # the worker jobs still queued for the next link (``supervisor.clusters.handover``).
    hand_over: Callable[[], int] | None = None

    @property
    def dashboard(self) -> str | None:
        link = self.dashboard_link or self.client.dashboard_link
        return str(link) if link else None


def configure_dask() -> Any:
    """Settings every campaign relies on, applied before any cluster starts: at once,
    and until the ``with`` block ends where the result is used as a context manager."""
    import dask
    import distributed  # noqa: F401  (its defaults first: see below)

    # Leaving the block undoes the set: a key that did not exist before is deleted, with
    # whatever was added under it meanwhile. Set before Dask's distributed defaults were
    # loaded, the whole "distributed" section went, and the next cluster failed.

    return dask.config.set(
        {
            # A worker that dies makes its task fail at once; the driver, which knows
            # trials, re-runs it with the same parameters and records the failure.
            "distributed.scheduler.allowed-failures": 0,
            # Trials are long and never stolen half-way; keep placement predictable.
            "distributed.scheduler.work-stealing": False,
        }
    )
