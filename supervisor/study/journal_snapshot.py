"""A snapshot of a journal's replay, so that opening a long campaign's journal reads only
what was appended since, not every record again.

Optuna rebuilds a journal storage by replaying every record in the file: about 22 per
trial, some 0.3 ms of CPU per trial here (a 20,000-trial campaign: 6 s; 100,000: half a
minute, for every ``status``, ``report``, resume and proposer process). Optuna snapshots
only to Redis; for the file, a process that has just replayed at least ``SAVE_AFTER`` bytes
of records and goes on or succeeds (``CampaignJournalStorage.save_snapshot``: a campaign's
driver once its checks have passed; ``save_opened``: any command of the CLI that succeeded,
``status`` or ``report`` among them) leaves ``<journal>.snapshot``: the replay, pickled,
with where in the file it ends. The next process to open the journal loads it and replays
the records after it. A command that refuses its input leaves none.

The file is a cache: delete it at any time. It is used only when it certainly belongs to
this journal and this code:

* its header names the byte offset where the replay ended, and hashes of the journal's
  first 64 KiB and of the 64 KiB before that offset: a journal replaced, truncated or
  rewritten (a copy restored from a backup) no longer matches, and is replayed whole;
* the header names the Optuna version and ``FORMAT`` (the replay's classes, pickled);
* it is unpickled only if this user owns it and no one else may write it, 0600 as
  written: a pickle runs code when loaded, and the journal's folder is the user's.

Saving is best effort: a folder that cannot be written (a colleague's run, a read-only
file system, a full disk) leaves no snapshot and changes nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import stat
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import supervisor.atomic as atomic

if TYPE_CHECKING:
    from optuna.storages.journal import JournalFileBackend

    from supervisor.optuna_internals import JournalStorageReplayResult

R = TypeVar("R", bound="JournalStorageReplayResult")

SUFFIX = ".snapshot"
FORMAT = 3  # bump when the replay's pickled classes change shape
SAVE_AFTER = 32 << 20  # bytes replayed (some 7,000 trials, 1-2 s) before a save pays
HASHED = 64 * 1024

# This process's journal storages (``CampaignJournalStorage``), for ``save_opened``.
OPENED: weakref.WeakSet[Any] = weakref.WeakSet()
# The same, held until ``save_opened`` in a CLI process (``hold``): referenced weakly alone,
# a command's storage was often collected before the command had succeeded, and `status`
# and `report` of a long campaign left no snapshot (each replayed the whole journal).
HELD: list[Any] | None = None


def hold() -> None:
    """Keep the journal storages this process opens until ``save_opened``: the CLI's
    (one command, then the process ends; a notebook's would pile up)."""
    global HELD
    HELD = []


def opened(storage: Any) -> None:
    """``storage`` has opened a journal: saved by ``save_opened``, if it read enough."""
    OPENED.add(storage)
    if HELD is not None:
        HELD.append(storage)


def save_opened() -> None:
    """A snapshot of each journal this process opened and read at length, once its
    command succeeded (a command that refuses its input writes nothing)."""
    for storage in list(OPENED):
        storage.save_snapshot()
    if HELD is not None:
        HELD.clear()


class Snapshot(Generic[R]):
    """A journal storage's replay, from its journal's snapshot when there is one, and
    saved when the records read since are ``SAVE_AFTER`` bytes or more."""

    def __init__(self, backend: JournalFileBackend, replay_type: type[R]) -> None:
        self.backend = backend
        self.replay_type = replay_type
        self.start = 0  # the byte the replay began at: the records before, the snapshot's

    def replay(self, prefix: str) -> R:
        """The replay to open the journal with, for a storage of worker id ``prefix``."""
        import supervisor.optuna_internals as internals

        loaded = load(self.backend, self.replay_type, prefix)
        if loaded is None:
            return self.replay_type(prefix)
        self.start = internals.line_offsets(self.backend)[loaded.log_number_read]
        return loaded

    def save(self, replay: JournalStorageReplayResult) -> None:
        """``replay``: the storage's, synchronised (the caller holds its thread lock)."""
        import supervisor.optuna_internals as internals

        offset = internals.line_offsets(self.backend).get(replay.log_number_read)
        if offset is not None and offset - self.start >= SAVE_AFTER:
            save(self.backend, replay)
            self.start = offset


def path_of(journal: str) -> Path:
    return Path(journal + SUFFIX)


def _hash(f: Any, start: int, end: int) -> str:
    f.seek(start)
    return hashlib.sha256(f.read(end - start)).hexdigest()


def _header(journal: str, offset: int, log_number: int) -> dict[str, Any]:
    import optuna

    with open(journal, "rb") as f:
        return {
            "format": FORMAT,
            "optuna": optuna.__version__,
            "log_number": log_number,
            "offset": offset,
            "head": _hash(f, 0, min(HASHED, offset)),
            "tail": _hash(f, max(0, offset - HASHED), offset),
        }


def load(backend: JournalFileBackend, replay_type: type[R], prefix: str) -> R | None:
    """The replay saved for ``backend``'s journal, given the worker id ``prefix`` of the
    storage that takes it; ``None`` (replay the journal whole) if there is none that
    certainly belongs to it. The backend learns where the replay ends in the file."""
    import supervisor.optuna_internals as internals

    journal = internals.file_path(backend)
    snapshot = path_of(journal)
    try:
        with open(snapshot, "rb") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None  # not this user's alone: never unpickled
            header = json.loads(f.readline())
            offset, log_number = int(header["offset"]), int(header["log_number"])
            if offset > os.path.getsize(journal) or header != _header(journal, offset, log_number):
                return None
            replay: R = pickle.load(f)
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError):
        return None  # none, or not this journal's: a cache, replayed instead
    except Exception:  # a pickle of classes that have changed since: the same
        return None
    if type(replay) is not replay_type or replay.log_number_read != log_number:
        return None
    internals.adopt_replay(replay, prefix)
    internals.line_offsets(backend)[log_number] = offset
    return replay


def save(backend: JournalFileBackend, replay: JournalStorageReplayResult) -> None:
    """Leave a snapshot of ``replay``, just synchronised with ``backend``'s journal (the
    caller holds the storage's thread lock); a folder that cannot be written keeps none."""
    import supervisor.optuna_internals as internals

    journal = internals.file_path(backend)
    log_number = replay.log_number_read
    offset = internals.line_offsets(backend).get(log_number)
    if offset is None:
        return
    with contextlib.suppress(Exception):  # a cache: its write must never fail an open
        header = json.dumps(_header(journal, offset, log_number)).encode() + b"\n"
        with atomic.replacing(path_of(journal), mode=0o600) as tmp, open(tmp, "wb") as f:
            f.write(header)
            pickle.dump(replay, f, protocol=pickle.HIGHEST_PROTOCOL)
