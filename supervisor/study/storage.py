"""Optuna storage from a URL, and opening the campaign's study.

Default: a JournalFileBackend in the run directory. It needs no server, appends one line
per event, and measured 1.17 ms per ask + parameter + 2 attributes + tell against 31.6 ms
for SQLite (``python -m supervisor.perf.storage_cost``, figures in the README). Any
Optuna RDB URL (sqlite://, postgresql://, mysql://) is accepted with --storage.
``postgresql://`` uses whichever PostgreSQL driver is installed (psycopg 3, else psycopg2)
whatever SQLAlchemy's default for the dialect is.

The journal is the campaign's only record: its file is guarded beyond what Optuna does
and cheap to append to (``supervisor.study.journal_file``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Container, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState

import supervisor.atomic as atomic
import supervisor.optuna_internals as internals
from supervisor.errors import UserError
from supervisor.optuna_internals import JournalOperation
from supervisor.rundir import secrets_in
from supervisor.study import gc_pause, journal_snapshot, storage_urls
from supervisor.study.journal_file import SafeJournalFileBackend
from supervisor.study.journal_file import StorageError as StorageError  # its home for callers
from supervisor.study.replay import IndexedReplay
from supervisor.study.storage_urls import DRIVERS, sqlite_problem, with_driver

if TYPE_CHECKING:  # the module is imported by commands that open a storage, never at start
    import optuna
    from optuna.storages import BaseStorage

JOURNAL_PREFIX = "journal:"
CONNECT_TIMEOUT = 10  # seconds for a database server to answer


class NoStudies(UserError):
    """A database without Optuna's tables, refused by a read-only open."""


def open_storage(url: str, *, read_only: bool = False) -> BaseStorage:
    """``journal:PATH`` (or a path ending in .log/.jsonl) or any SQLAlchemy URL.

    ``read_only``: for commands that read a campaign, which must change no storage.
    Opening would create a missing journal or SQLite file, and Optuna's RDBStorage
    creates its tables and stamps their version on connect: a missing file is refused,
    and a database without Optuna's tables raises ``NoStudies``."""

    path: str | None = None
    if url.startswith(JOURNAL_PREFIX):
        path = url[len(JOURNAL_PREFIX) :]
    elif "://" not in url and url.endswith((".log", ".jsonl", ".journal")):
        path = url
    shown = redact(url)
    problem = sqlite_problem(url)
    if problem is not None:
        raise UserError(f"storage {shown!r}: {problem}")
    try:
        if path is not None:
            if read_only and not os.path.isfile(path):  # opening would create it
                raise UserError(f"{path}: no such storage journal (moved or deleted?)")
            atomic.folder(Path(path).parent)
            with storage_urls.private_file(path):
                return CampaignJournalStorage(SafeJournalFileBackend(path))
        if "://" not in url:
            raise UserError(
                f"--storage {shown!r}: expected a URL such as sqlite:///x.db, "
                "postgresql://user@host/db or journal:/path/to/journal.log"
            )
        url = with_driver(url, shown)
        # Made owner-only before SQLite makes it with the umask's mode.
        with storage_urls.private_file(None if read_only else storage_urls.sqlite_file(url)):
            return _open_rdb(url, shown, read_only)
    except UserError:
        raise
    except Exception as exc:  # storage libraries raise many types; the user needs one line
        detail = " ".join(str(exc).split())
        for secret in secrets_in(url):  # a driver's message may quote what it could not use
            detail = detail.replace(secret, "***")
        detail = " ".join([detail[:500], *getattr(exc, "__notes__", [])])  # ``rdb.reached``
        if "no password supplied" in detail:  # libpq; run.json keeps no password
            detail += " (run.json keeps no password: set PGPASSWORD or use ~/.pgpass)"
        raise UserError(f"cannot open storage {shown!r}: {type(exc).__name__}: {detail}") from None


def _open_rdb(url: str, shown: str, read_only: bool) -> BaseStorage:
    """A database storage; a server away for now is waited for (``rdb.reached``)."""
    from supervisor.study.rdb import reached

    def connect() -> BaseStorage:
        if read_only:
            _check_schema(url, shown)
        return _rdb_storage(url, shown, create=not read_only)

    return reached(connect, url, shown) if _engine_options(url) else connect()


def _engine_options(url: str) -> dict[str, Any]:
    if url.split(":", 1)[0].split("+")[0] not in DRIVERS:
        return {}
    # A pooled connection the server dropped (a restart, pg_terminate_backend) is
    # replaced before use instead of failing the next statement.
    options: dict[str, Any] = {"pool_pre_ping": True}
    if "connect_timeout" not in url:  # a server that does not answer: seconds, not minutes
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return options


def _check_schema(url: str, shown: str) -> None:
    """Before a read-only open: the database exists and holds Optuna's tables, version
    stamped (RDBStorage would create what is missing). Looked at, never written."""
    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and not os.path.isfile(database):
        # Connecting would create the file.
        what = "not a regular file" if os.path.exists(database) else "no such SQLite database"
        raise UserError(f"{database}: {what} (moved or deleted?)")
    engine = sqlalchemy.create_engine(url, **_engine_options(url))
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            if "studies" not in tables:
                raise NoStudies(f"{shown}: holds no study (a database without Optuna's tables)")
            for table in ("version_info", "alembic_version"):  # names of Optuna's schema
                query = sqlalchemy.text(f"SELECT 1 FROM {table}")
                if table not in tables or connection.execute(query).first() is None:
                    raise UserError(
                        f"{shown}: Optuna's tables without their version ({table});"
                        " not opened, as opening would write it"
                    )
    finally:
        engine.dispose()


def _rdb_storage(
    url: str, shown: str, attempts: int = 5, create: bool = True
) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage (with ``create``, its tables made where missing). Drivers that
    start together on an empty database race to create its schema (PostgreSQL: duplicate
    key on the enum types); the loser finds the schema made on its next attempt."""
    import time

    from sqlalchemy.exc import IntegrityError, ProgrammingError

    from supervisor.study.rdb import ResilientRDBStorage

    engine = _engine_options(url) or None
    for attempt in range(attempts):
        try:
            storage = ResilientRDBStorage(
                url, engine, heartbeat_interval=None, skip_table_creation=not create
            )
            storage.shown, storage.server = shown, bool(engine)  # options: a server's
            return storage
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def batch(study: optuna.Study) -> contextlib.AbstractContextManager[None]:
    """Inside the block, the study's trial attribute and parameter writes go to the
    campaign journal together with the next other write or at the block's end: one
    append instead of one each. Other storages write each at once, as usual."""
    storage = internals.study_storage(study)
    if isinstance(storage, CampaignJournalStorage):
        return storage.batched()
    return contextlib.nullcontext()


@contextlib.contextmanager
def exclusive(study: optuna.Study) -> Iterator[None]:
    """The campaign journal's lock held over the block: another driver's writes wait, so
    a check and the writes it decides are one step (``SafeJournalFileBackend.exclusive``).
    A database: a lock of the study that such blocks take (``study_lock``)."""
    from supervisor.study.study_lock import study_lock

    backend = _journal_file(study)
    database = internals.rdb_storage(study)
    if backend is not None:
        with backend.exclusive():
            yield
    elif database is not None:
        with study_lock(database, study.study_name):
            yield
    else:
        yield


def flush(study: optuna.Study) -> None:
    """Return once the campaign journal's durable records are on disk (they are fsynced
    off the writer's thread). Other storages write durably at once."""
    backend = _journal_file(study)
    if backend is not None:
        backend.flush()


def _journal_file(study: optuna.Study) -> SafeJournalFileBackend | None:
    storage = internals.study_storage(study)
    if isinstance(storage, CampaignJournalStorage):
        backend = internals.backend(storage)
        if isinstance(backend, SafeJournalFileBackend):
            return backend
    return None


def set_user_attrs(trial: optuna.Trial, values: Mapping[str, Any]) -> None:
    """Several user attributes of a running trial, in one write where the storage can."""
    with batch(trial.study):
        for key, value in values.items():
            trial.set_user_attr(key, value)


def load_study(url: str, study_name: str) -> optuna.Study:
    """A stored study, for commands that read it: the storage is left as it was."""
    import optuna

    try:
        storage = open_storage(url, read_only=True)
    except NoStudies:
        raise UserError(
            f"no study {study_name!r} in {redact(url)}; studies there: none"
            " (a database without Optuna's tables)"
        ) from None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage))
        raise UserError(
            f"no study {study_name!r} in {redact(url)}; studies there: {names or 'none'}"
        ) from None


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ***: messages end up in logs."""
    from supervisor.rundir import hide_secrets, may_hold_password

    journal = url.startswith(JOURNAL_PREFIX) or url.endswith((".log", ".jsonl", ".journal"))
    if "@" in url and "://" not in url and not journal:
        # No URL (a slash short: postgresql:/me:pw@host/db), yet a password may lie
        # before its '@': what is there is not shown.
        return f"***@{url.rpartition('@')[2]}"
    return hide_secrets(url) if may_hold_password(url) else url


# Writes that may wait inside CampaignJournalStorage.batched(): nothing of this process
# reads them back before the block ends, except a trial's intermediate values, which
# telling it pruned reads (``get_trial`` writes them first).
_DEFERRABLE = frozenset(
    {
        JournalOperation.SET_TRIAL_PARAM,
        JournalOperation.SET_TRIAL_USER_ATTR,
        JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
    }
)


class CampaignJournalStorage(JournalStorage):
    """Optuna's JournalStorage with two costs of a long campaign removed; the file stays
    Optuna's format, readable by any Optuna tool.

    * ``batched()``: a trial's attributes and parameters, and then its state, in one
      append (one lock, one write, one read back) instead of one append each.
    * Reading a study's trials copies an index kept by the replay instead of a loop
      over every trial; asking for WAITING trials reads an index of those alone.
    """

    def __init__(self, log_storage: SafeJournalFileBackend) -> None:
        self._pending = threading.local()  # .logs: this thread's deferred writes, or None
        self._snapshot = journal_snapshot.Snapshot(log_storage, IndexedReplay)
        # Not super().__init__: it would replay the whole journal into a plain replay first.
        with gc_pause.paused():  # millions of objects, no garbage: half the time was GC's
            internals.init_journal_storage(self, log_storage, self._snapshot.replay)
        journal_snapshot.opened(self)

    def save_snapshot(self) -> None:
        """Leave a snapshot of the replay if opening read many records (journal_snapshot):
        once a command has opened its campaign and will go on, or has succeeded."""
        with internals.thread_lock(self):
            self._snapshot.save(internals.replay(self))

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        del state["_pending"]
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._pending = threading.local()
        internals.replace_replay(self, IndexedReplay)

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """This thread's attribute and parameter writes wait, in order, for its next
        other write (a trial's state, a new trial) or the end of the block."""
        if getattr(self._pending, "logs", None) is not None:  # nested: the outer one writes
            yield
            return
        self._pending.logs = []
        try:
            yield
        finally:
            logs, self._pending.logs = self._pending.logs, None
            if logs:
                with internals.thread_lock(self):
                    internals.backend(self).append_logs(logs)
                    internals.sync(self)

    # Overrides JournalStorage._write_log (see supervisor.optuna_internals): every
    # write of JournalStorage goes through it.
    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        worker_id = internals.replay(self).worker_id
        log = {"op_code": op_code, "worker_id": worker_id, **extra_fields}
        pending: list[dict[str, Any]] | None = getattr(self._pending, "logs", None)
        if pending is None:
            internals.backend(self).append_logs([log])
            return
        pending.append(log)
        if op_code not in _DEFERRABLE:  # the caller reads it back at once: write them all
            self._pending.logs = []
            internals.backend(self).append_logs(pending)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        """Optuna's answer, with this thread's deferred intermediate values of the trial
        in it (telling a trial pruned reads its last one)."""
        trial = super().get_trial(trial_id)
        pending: list[dict[str, Any]] = getattr(self._pending, "logs", None) or []
        values = {
            log["step"]: log["intermediate_value"]
            for log in pending
            if log["op_code"] == JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE
            and log["trial_id"] == trial_id
        }
        if not values:
            return trial
        trial = copy.copy(trial)  # the replay's own object stays as the file says
        trial.intermediate_values = {**trial.intermediate_values, **values}
        return trial

    def finished_since(self, study_id: int, start: int) -> tuple[list[int], int]:
        """The numbers of the study's trials that finished from position ``start`` of its
        log of finished trials on (as far as this process has read the journal), and the
        position after them."""
        with internals.thread_lock(self):
            replay = internals.replay(self)
            assert isinstance(replay, IndexedReplay)
            log = replay.finished.get(study_id)
            if log is None:
                return [], start
            return log[start:].tolist(), len(log)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        """Optuna's answer, read off the replay's indexes (``IndexedReplay``)."""
        with internals.thread_lock(self):
            internals.sync(self)
            replay = internals.replay(self)
            assert isinstance(replay, IndexedReplay)
            if study_id not in internals.replay_studies(replay):
                raise KeyError(f"no study with id {study_id}")
            if states == (TrialState.WAITING,):  # what Study.ask asks for
                known = internals.replay_trials(replay)
                trials = [known[t] for t in replay.waiting.get(study_id, {})]
            else:
                listed = replay.listed.get(study_id, [])
                trials = (
                    list(listed) if states is None else [t for t in listed if t.state in states]
                )
        return copy.deepcopy(trials) if deepcopy else trials
