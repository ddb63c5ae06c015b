"""Dask preload for the local cluster's worker processes: signals meant for the driver
leave them running, and they hold no storage password.

A terminal's Ctrl-C reaches every process of its group, and a batch system's SIGTERM
(``scancel`` of a job that runs a search on a local cluster) every process of the job.
Workers that died of it first lost their running trials as dead workers (an attempt each,
the third one "died on all attempts", a model failure) before the driver could record them
as interrupted and re-queue them. The driver closes its workers itself, and a worker left
behind by a killed driver is ended by its nanny's death.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: runs in the worker process before it takes a task."""
    from supervisor.execution.node import drop_storage_secrets

    # Spawned with the driver's environment (the nanny can add to it, not take away):
    # the storage's password is the driver's alone, not its workers' or their trials'.
    drop_storage_secrets()
    with contextlib.suppress(ValueError):  # not the main thread: nothing to change there
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
