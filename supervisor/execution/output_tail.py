"""What a trial process printed last: the cause of a death the protocol cannot report.

A trial that raises sends its traceback; one whose process dies (a segfault or an abort
in native code, CUDA's "out of memory" then ``abort()``, ``os._exit``) sends nothing,
and "killed by signal 11" alone tells the user nothing. Its stderr (the child's
``faulthandler`` writes the Python stack there on a fatal signal) is forwarded to the
worker's own, as before, and its last lines are kept for the failure's record.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import IO

KEEP_BYTES = 4096  # of the child's stderr, kept across its last chunks
SHOWN_LINES = 12  # in the failure's record
SHOWN_CHARS = 1500


class OutputTail:
    """Forward ``stream`` (a child's stderr) to this process's stderr, keeping its end."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._kept = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name="trial-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        read = getattr(self._stream, "read1", self._stream.read)
        while True:
            try:
                chunk = read(65536)
            except (OSError, ValueError):  # closed under us by stop()
                return
            if not chunk:  # the child and all its children are gone
                with contextlib.suppress(OSError):
                    self._stream.close()
                return
            with contextlib.suppress(OSError):
                os.write(2, chunk)  # where the child's output went before: the worker's log
            with self._lock:
                self._kept = (self._kept + chunk)[-KEEP_BYTES:]

    def clear(self) -> None:
        """A new trial starts: what it prints is its own."""
        with self._lock:
            self._kept = b""

    def join(self, wait: float = 1.0) -> None:
        """Return once the child's stderr is forwarded to its end (its process gone), or
        after ``wait`` s: its pipe may outlive it in a grandchild."""
        self._thread.join(wait)

    def last_lines(self, wait: float = 1.0) -> str:
        """The last lines printed, once the child's stderr closed (within ``wait`` s:
        its pipe may outlive it in a grandchild); a progress bar's ``\\r`` rewrites show
        as their last state."""
        self._thread.join(wait)
        with self._lock:
            text = self._kept.decode("utf-8", errors="replace")
        lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
        kept = [line for line in lines if line][-SHOWN_LINES:]
        shown = "\n".join(kept)
        return shown if len(shown) <= SHOWN_CHARS else "…" + shown[-SHOWN_CHARS:]
