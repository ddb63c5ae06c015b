"""The campaign journal's file: Optuna's ``JournalFileBackend`` (the file stays Optuna's
format and lock), guarded and made cheap to write many small records to.

Guards, beyond what Optuna does:

* Every line must be a complete JSON record. Optuna skips a bad last line in silence
  and then appends after it, which makes the file unreadable from the next record on:
  the last line is checked on opening; a damaged line before it fails Optuna's reading,
  and is then found and named. A file cut short or damaged is refused with one line
  that says where, and is never written to.
* An append that fails (a full disk, a quota) is cut back to the last complete record
  and raised as a ``StorageError``: the log stays readable and the error is one line.

Costs: a durable record's fsync takes milliseconds on a parallel file system, and
Optuna reads back every record it writes. So:

* Durable records are fsynced by a background thread (``Flusher``): the writer never
  waits on the disk, and one fsync covers every record written before it. A driver
  killed loses nothing written (the page cache keeps it); a node that crashes loses at
  most the records written since the last completed fsync began (they start ``GAP``,
  0.1 s, apart at most). ``flush()`` waits for them, at once.
* This process's own appends are not read back: they are applied from memory. Reads
  look at the file's size at most every 5 ms (``FRESH``) rather than on every call, and
  an append that found the file as last read is such a look (its fstat).
* Every system call of the driver's thread lets the Dask client's event loop take the
  interpreter lock, and the driver then waits for it back: an append makes four (the
  lock's symlink and unlink, a fstat and the write), not Optuna's seven. The file stays
  open between appends, and the lock is released by removing it (Optuna renames it
  first, then removes it: one more call for no more safety).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import TrialState

import supervisor.optuna_internals as internals
from supervisor.errors import UserError
from supervisor.optuna_internals import JournalOperation
from supervisor.study.flusher import Flusher
from supervisor.study.flusher import StorageError as StorageError  # its home for callers

# A torn last line is most often another process's append in progress (a search's
# driver, while `supervisor status` reads): it is waited for while the journal's lock is
# held, this many seconds at most after the last progress (a stale lock of a killed writer).
SETTLE = 2.0


def check_journal(path: str) -> None:
    """Raise a one-line UserError unless the journal's last line is a complete record.

    Optuna reads every line before it on opening, and a damaged one raises there
    (``read_logs`` then says where, see ``_where``): parsing the whole file here first
    took 1.7 of the 6.5 CPU seconds of opening a 186 MB journal. The last line is what
    Optuna passes over in silence (cut short, or not JSON) and would append after.
    A writer holds the journal's lock while it appends, so a torn last line seen after
    its lock was free is damage, and one seen while a writer holds it is waited for."""
    size = -1
    free = False  # the lock was free before the last look
    deadline = time.monotonic() + SETTLE
    while True:
        start, line = _last_line(path)
        if not line or line.endswith(b"\n"):
            problem, column = _record_problem(line) if line else (None, 0)
            if problem:
                raise _corrupt(path, _line_number(path, start), column, problem)
            return
        grown = os.path.getsize(path)
        if grown == size and (free or time.monotonic() > deadline):
            raise UserError(
                f"{path}:{_line_number(path, start)}: storage journal cut short: its last"
                f" line is an incomplete record ({len(line)} of {grown} bytes); nothing was"
                f" changed. Use a complete copy, or keep the records before it with:"
                f" truncate -s {start} {path}"
            )
        if grown != size:  # a writer is at work
            deadline = time.monotonic() + SETTLE
        size = grown
        free = not os.path.lexists(internals.lock_path(path))
        if not free:
            time.sleep(0.005)


TAIL = 1 << 16  # bytes read from the end at a time to find the last line


def _last_line(path: str) -> tuple[int, bytes]:
    """(offset, bytes) of the file's last line, with its newline if it has one."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        start, tail, step = end, b"", TAIL
        while start > 0:
            start, step = max(0, end - step), step * 2
            f.seek(start)
            tail = f.read(end - start)
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0:
                return start + cut + 1, tail[cut + 1 :]
        return 0, tail


def _line_number(path: str, offset: int) -> int:
    """The number of the line starting at byte ``offset``."""
    count = 1
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 22))
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count


def _corrupt(path: str, number: int, column: int, problem: str) -> UserError:
    return UserError(
        f"{path}:{number}:{column}: storage journal is corrupt: {problem};"
        " nothing was changed. Restore it from a copy"
    )


def _where(path: str) -> None:
    """Raise the one-line UserError naming the first damaged line of the journal, if any
    (after Optuna failed to read it)."""
    _scan(path, 0, 1)


def _scan(path: str, offset: int, first: int) -> tuple[int, int, int] | None:
    """Check the lines from byte ``offset`` (line ``first``) on; None when all are
    complete records, else (offset, number, length) of the incomplete last line."""
    with open(path, "rb") as f:
        f.seek(offset)
        for number, line in enumerate(f, start=first):
            if not line.endswith(b"\n"):
                return offset, number, len(line)
            problem, column = _record_problem(line)
            if problem:
                raise _corrupt(path, number, column, problem)
            offset += len(line)
    return None


def _record_problem(line: bytes) -> tuple[str | None, int]:
    """What is wrong with one journal line (None: nothing), and at which column."""
    try:
        record: Any = json.loads(line)
    except UnicodeDecodeError as exc:
        return f"byte 0x{line[exc.start]:02x} is not UTF-8", exc.start + 1
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})", exc.colno
    if not isinstance(record, dict) or "op_code" not in record:
        return "not an Optuna journal record", 1
    return None, 0


# Records a node crash must not take: study changes, the creation of a queued (WAITING)
# trial and every trial's state (told, failed, pruned). fsync flushes the whole file, so
# the records before one of these (parameters, user attributes, intermediate values)
# become durable with it; a crash of the driver process alone loses nothing written.
_DURABLE_OPS = frozenset(
    {
        JournalOperation.CREATE_STUDY,
        JournalOperation.DELETE_STUDY,
        JournalOperation.SET_STUDY_USER_ATTR,
        JournalOperation.SET_STUDY_SYSTEM_ATTR,
        JournalOperation.SET_TRIAL_STATE_VALUES,
    }
)


def _durable(log: dict[str, Any]) -> bool:
    # A RUNNING trial's creation may go with a node crash: its driver, the only one that
    # could tell it, goes too. A queued one (a re-run) must not.
    if log.get("op_code") == JournalOperation.CREATE_TRIAL:
        return log.get("state", TrialState.RUNNING) != TrialState.RUNNING
    return log.get("op_code") in _DURABLE_OPS


@dataclass
class _Appended:
    """Lines this process appended last, one after the other, at bytes [start, end);
    ``looked``: when the last of them found the file ending where it began (a look)."""

    start: int
    end: int
    lines: list[bytes]
    looked: float


# Seconds a look at the file's size stays current for reads (read_logs).
FRESH = 0.005
# What a backend keeps for this process only: not pickled.
_RUNTIME = frozenset({"_mine", "_looked", "_holder", "flusher", "_file"})
_encode = json.JSONEncoder(separators=(",", ":")).encode


class _SymlinkLock(JournalFileSymlinkLock):
    """Optuna's lock (a symlink beside the file, taken over after its grace period by
    others), released by removing it. Whoever holds it removes it, or someone who
    takes over a stale one: only one removal succeeds either way."""

    def release(self) -> None:
        try:
            os.unlink(self._lock_file)
        except OSError:
            raise RuntimeError("Error: did not possess lock") from None


class SafeJournalFileBackend(JournalFileBackend):
    """Optuna's journal file, checked when opened and never left with a torn record."""

    def __init__(self, file_path: str) -> None:
        self.path = file_path
        if os.path.exists(file_path):
            check_journal(file_path)
        try:
            super().__init__(file_path, _SymlinkLock(file_path))
        except OSError as exc:  # creating it on a full or read-only file system
            raise StorageError(f"cannot create storage {file_path}: {exc.strerror}") from None
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._file: _OpenFile | None = None
        self._mine: _Appended | None = None
        self._looked = -math.inf  # when read_logs last looked at the file's size
        self._holder: int | None = None  # the thread inside exclusive(), if any
        self.flusher = Flusher(self.path)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # -- reads ------------------------------------------------------------------------

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        # Every storage call reads what is new first (Optuna's JournalStorage: some 20
        # per trial), each a stat of the file and so a round trip for the interpreter
        # lock. What this process appended since its last read follows that read in the
        # file (it holds the lock to append): those lines are taken from memory, without
        # a look at the file. Else the file is looked at when the last look is older
        # than FRESH seconds: another driver's records arrive up to that much later,
        # which no reader can tell from their being written that much later.
        offsets = internals.line_offsets(self)
        known = offsets.get(log_number_from)
        if known is not None:
            mine, self._mine = self._mine, None
            if mine is not None and mine.start == known:
                offset = known
                for number, line in enumerate(mine.lines, start=log_number_from + 1):
                    offset += len(line)
                    offsets[number] = offset
                # Its append saw the file end at ``known`` + ours: a look, as a stat is.
                self._looked = max(self._looked, mine.looked)
                # One decode for all: a copy as any reader of the file gets it.
                yield from json.loads(b"[%b]" % b",".join(mine.lines))
                return
            now = time.monotonic()
            if mine is None and now - self._looked < FRESH:
                return
            self._looked = now
            if os.stat(self.path).st_size == known:
                return
        try:
            for record in super().read_logs(log_number_from):
                if not isinstance(record, dict) or "op_code" not in record:
                    raise ValueError("not an Optuna journal record")
                yield record
        except Exception:  # Optuna's JSONDecodeError, UnicodeDecodeError: say where
            _where(self.path)
            raise

    # -- writes -----------------------------------------------------------------------

    def flush(self) -> None:
        """Return once every durable record written so far is on disk."""
        self.flusher.wait()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the file's lock over a block of reads and appends: no other process
        appends meanwhile, so what the block read stays the end of the file when it
        writes (a check and the writes it decides, as one step)."""
        lock = internals.file_lock(self)
        lock.acquire()
        self._holder = threading.get_ident()
        # The next read looks at the file, not only at what this process appended last.
        self._looked, self._mine = -math.inf, None
        try:
            yield
        finally:
            self._holder = None
            try:
                lock.release()
            except RuntimeError as exc:  # taken over as stale meanwhile
                raise StorageError(f"cannot lock storage {self.path}: {exc}") from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        lines = [(_encode(log) + "\n").encode() for log in logs]
        self.flusher.check()
        held = self._holder == threading.get_ident()  # inside exclusive(): locked already
        looked = time.monotonic()  # before the append's fstat: what it sees is newer
        try:
            with (
                contextlib.nullcontext()
                if held
                else internals.get_lock_file(internals.file_lock(self))
            ):
                start = self._append(b"".join(lines))
        except RuntimeError as exc:  # the lock could not be made, then not released
            raise StorageError(f"cannot lock storage {self.path}: {exc}") from None
        end = start + sum(map(len, lines))
        mine = self._mine
        if mine is not None and mine.end == start:  # right after our last append
            mine.lines += lines
            mine.end, mine.looked = end, looked
        else:
            self._mine = _Appended(start, end, lines, looked)
        if any(_durable(log) for log in logs):
            self.flusher.ask()

    def _append(self, data: bytes) -> int:
        """Write ``data`` at the end (the caller holds the lock) and return where it
        starts, or leave the file as it was and raise StorageError."""
        file = self._file
        found = os.fstat(file.fd) if file is not None else None
        if file is None or found is None or found.st_nlink == 0:  # removed or replaced since
            if file is not None:
                file.close()
            file = self._file = _OpenFile(self.path)
            found = os.fstat(file.fd)
        end = found.st_size  # we hold the lock: nobody else appends
        _write(file.fd, data, end, self.path)
        return end


class _OpenFile:
    """A file open for appends, closed with its owner (or before, by ``close``)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.close = weakref.finalize(self, os.close, self.fd)


def _write(fd: int, data: bytes, end: int, path: str) -> None:
    """All of ``data`` at the end of ``fd`` (at ``end``), or the file cut back to ``end``
    and a StorageError."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        with contextlib.suppress(OSError):  # drop the torn record: the log stays readable
            os.ftruncate(fd, end)
        raise StorageError(
            f"cannot write to storage {path}: {exc.strerror}; the records written before"
            " are intact: free space and rerun the same command to resume"
        ) from None
