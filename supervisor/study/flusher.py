"""fsyncs of a file off the writer's thread (``Flusher``), for the campaign journal
(``supervisor.study.journal_file``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref

from supervisor.errors import UserError


class StorageError(UserError):
    """The storage cannot be written (disk full, quota, permissions): not the user's input."""

    exit_code = 1


IDLE = 10.0  # seconds a Flusher's thread waits for a request before it ends


class Flusher:
    """fsyncs a file on a background thread whenever asked; ``wait`` returns once all
    asked so far is on disk. An fsync error is kept and raised by ``check``. A process
    that exits waits for its flushers first (a short command's records too). The thread
    ends after ``IDLE`` seconds without a request and starts again on the next one, so
    a process that runs campaign after campaign (the Python API) keeps no thread per
    journal it once wrote."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        _FLUSHERS.add(self)

    def ask(self) -> None:
        with self._cond:
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fsync", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            asked = self._asked
            self._cond.wait_for(lambda: self._done >= asked or self._error is not None)
        self.check()

    def check(self) -> None:
        if self._error is not None:
            raise StorageError(
                f"cannot write to storage {self.path}: {self._error.strerror} (fsync):"
                " records written since the last good fsync may be lost in a crash; free"
                " space and rerun the same command to resume"
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._asked > self._done, IDLE):
                    self._thread = None  # ask() starts another
                    return
                asked = self._asked
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
