"""dask-jobqueue, imported without its side effect on Ctrl-C.

Importing ``dask_jobqueue`` runs its ``runner`` module, which replaces the process's
SIGINT handler with ``sys.exit()``. A Ctrl-C in a driver or notebook that had loaded a
batch launcher profile then ended with exit 0, no summary and no "interrupted". Where a
KeyboardInterrupt was expected (the cluster's start, which closes what it started), a
SystemExit came instead. The handler the process had is put back.
"""

from __future__ import annotations

import signal
import threading
from types import ModuleType


def dask_jobqueue() -> ModuleType:
    """The ``dask_jobqueue`` module, with this process's Ctrl-C handling as it was."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    import dask_jobqueue as module

    if main and _from_runner(signal.getsignal(signal.SIGINT)):
        # Imported before (the damage done then): Python's own handler, KeyboardInterrupt.
        keep = before if before is not None and not _from_runner(before) else None
        signal.signal(signal.SIGINT, keep or signal.default_int_handler)
    return module


def _from_runner(handler: object) -> bool:
    return getattr(handler, "__module__", None) == "dask_jobqueue.runner"
