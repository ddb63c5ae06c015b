"""Where a local cluster's worker writes what it and its trials print: the run's
``workers.log`` (``SUPERVISOR_WORKER_LOG``, set by ``clusters.local``), not the driver's
terminal.

A worker process inherits the terminal of the command that started the cluster: a trial
that crashed printed its dozen lines of Python stack there (faulthandler's, on each of its
attempts) through the driver's progress bar and into the campaign's log, beside the one
line the campaign says of it; a batch job's workers have a log of their own. The switch is
made at the worker's first trial: the run directory exists then, while a command refused
or interrupted as the cluster starts writes nothing.
"""

from __future__ import annotations

import os
import threading

LOG_ENV = "SUPERVISOR_WORKER_LOG"
_lock = threading.Lock()
_done = False


def to_run_log() -> None:
    """Once per process: stdout and stderr appended to the log file named by the
    environment, owner-only; nothing when none is named or its folder is not there."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        path = os.environ.get(LOG_ENV)
        if not path or not os.path.isdir(os.path.dirname(path)):
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:  # the output stays where it was: a trial never fails for it
            return
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
