"""fsyncs of a file off the writer's thread (``Flusher``), for the campaign journal
(``supervisor.study.journal_file``)."""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
import weakref

from supervisor.errors import UserError


class StorageError(UserError):
    """The storage cannot be written (disk full, quota, permissions): not the user's input."""

    exit_code = 1


IDLE = 10.0  # seconds a Flusher's thread waits for a request before it ends
# Seconds from one fsync's start to the next one's, unless a caller waits (``wait``). Each
# is a commit of the file system's journal: one per told trial (hundreds a second on
# short trials) took 10 % of a no-op campaign's wall time, while a node crash loses what
# was written since the last fsync began, so at most GAP more than at one per trial.
GAP = 0.1


class Flusher:
    """fsyncs a file on a background thread whenever asked; ``wait`` returns once all
    asked so far is on disk. An fsync error is kept and raised by ``check``. A process
    that exits waits for its flushers first (a short command's records too). The thread
    ends after ``IDLE`` seconds without a request and starts again on the next one, so
    a process that runs campaign after campaign (the Python API) keeps no thread per
    journal it once wrote. Two fsyncs start at least ``GAP`` seconds apart, unless a
    caller waits."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread waits for a request (not for GAP to pass)
        self._waiting = 0  # callers in wait(): the next fsync goes at once
        _FLUSHERS.add(self)

    def ask(self) -> None:
        with self._cond:
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"fsync {self.path}", daemon=True
                )
                self._thread.start()
            elif self._idle:  # else it fsyncs what is asked once GAP has passed
                self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            asked = self._asked
            self._waiting += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._done >= asked or self._error is not None)
            finally:
                self._waiting -= 1
        self.check()

    def check(self) -> None:
        if self._error is not None:
            raise StorageError(
                f"cannot write to storage {self.path}: {self._error.strerror} (fsync):"
                " records written since the last good fsync may be lost in a crash; free"
                " space and rerun the same command to resume"
            )

    def _run(self) -> None:
        began = -math.inf  # when the last fsync began
        while True:
            with self._cond:
                self._idle = True
                found = self._cond.wait_for(lambda: self._asked > self._done, IDLE)
                self._idle = False
                if not found:
                    self._thread = None  # ask() starts another
                    return
                self._cond.wait_for(lambda: self._waiting > 0, began + GAP - time.monotonic())
                asked = self._asked
            began = time.monotonic()
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._done = asked
                self._cond.notify_all()


_FLUSHERS: weakref.WeakSet[Flusher] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for flusher in list(_FLUSHERS):
        with contextlib.suppress(StorageError):  # already raised to its writer, or lost
            flusher.wait()
