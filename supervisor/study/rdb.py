"""Optuna's RDBStorage for a campaign on a database server (PostgreSQL, MySQL) that rides
out the server restarting or dropping its connections.

Optuna's RDBStorage raises on the first failed statement: a database restarted for
maintenance, or a connection the administrator terminated, ended the driver with a
traceback while its trials trained. Here every storage call that fails on the connection
(SQLAlchemy's OperationalError, InterfaceError or an invalidated connection) is tried
again, with pooled connections checked before use (``pool_pre_ping``), for up to
``RECONNECT_FOR`` seconds; then it is a one-line ``StorageError`` (exit 1) and the run
resumes with the same command. Other errors of the database (a read-only role, a broken
schema) are not retried: a one-line ``StorageError`` too, not Optuna's traceback.

Opening the storage is tried again the same way while the server is away (``reached``),
in a batch job or with $SUPERVISOR_STORAGE_RECONNECT_S set.

A failed statement's transaction was rolled back by the server, so trying again writes
once; the one exception, a connection lost after the server committed and before it
answered, is taken for done where the storage can tell (a trial's state).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from supervisor.errors import add_note
from supervisor.rundir import secrets_in
from supervisor.study.journal_file import StorageError

RECONNECT_ENV = "SUPERVISOR_STORAGE_RECONNECT_S"
RECONNECT_FOR = 120.0  # seconds a storage call is tried again while the server is away


def reconnect_for() -> float:
    """``RECONNECT_FOR``, or the seconds $SUPERVISOR_STORAGE_RECONNECT_S gives (a longer
    maintenance window); a value that is not a number is ignored."""
    try:
        return max(0.0, float(os.environ[RECONNECT_ENV]))
    except (KeyError, ValueError):
        return RECONNECT_FOR


_PAUSE = (0.5, 1.0, 2.0, 5.0)  # between attempts, the last repeated
F = TypeVar("F", bound=Callable[..., Any])


_answered_again: float | None = None  # when this process last found the database back


def answered_again_within(seconds: float) -> bool:
    """Whether this process found the database back after an outage in the last
    ``seconds``: no driver could renew its lease meanwhile (``supervisor.study.recovery``)."""
    return _answered_again is not None and time.monotonic() - _answered_again < seconds


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what Optuna wrapped in it) is the connection failing, not the
    statement: worth trying again on a new connection."""
    from sqlalchemy import exc as sa

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, StorageError):  # a nested call gave up
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# The words of a database server's errors at connect that pass (lower case): the server
# restarting or not up yet, its host unreachable for a while, out of connection slots.
AWAY = (
    "connection refused",
    "timeout expired",
    "timed out",
    "starting up",  # PostgreSQL: "the database system is starting up"
    "shutting down",
    "in recovery mode",
    "not currently accepting connections",
    "too many clients",  # PostgreSQL: max_connections reached
    "too many connections",  # MySQL
    "server closed the connection",
    "network is unreachable",
    "no route to host",
    "temporary failure in name resolution",  # DNS, not a name that does not exist
    "connection reset",
    "lost connection",  # MySQL
)
# A host that does not exist is a typo, not an outage: said at once.
NO_SUCH_HOST = ("name or service not known", "nodename nor servname", "unknown host")


def away(exc: BaseException) -> bool:
    """Whether connecting failed because the server is away for now (``AWAY``), not
    because of what the URL says (a wrong password, database or host)."""
    from sqlalchemy import exc as sa

    if not isinstance(exc, sa.OperationalError | sa.InterfaceError):
        return False
    said = " ".join(str(getattr(exc, "orig", None) or exc).lower().split())
    return not any(w in said for w in NO_SUCH_HOST) and any(w in said for w in AWAY)


T = TypeVar("T")


def reached(connect: Callable[[], T], url: str, shown: str) -> T:
    """``connect()``, tried again while the database server is away (``away``) for up to
    ``reconnect_for()`` seconds: a chained batch job starting while the database host
    reboots or fails over waits for it, saying so once, instead of ending at once. Typed
    on a login node (no batch job, no $SUPERVISOR_STORAGE_RECONNECT_S), a closed port is
    more likely a typo: one line at once."""
    from supervisor.execution.provenance import batch_job

    waits = bool(batch_job()) or RECONNECT_ENV in os.environ
    patience, attempt = (reconnect_for() if waits else 0.0), 0
    started = time.monotonic()
    while True:
        try:
            result = connect()
        except Exception as exc:
            waited = time.monotonic() - started
            if not away(exc) or waited >= patience:
                if attempt:
                    add_note(exc, f"(tried again for {waited:.0f} s)")
                raise
            if not attempt:
                orig = getattr(exc, "orig", None) or exc
                said = " ".join(str(orig).split())
                for secret in secrets_in(url):  # a driver's message may quote it
                    said = said.replace(secret, "***")
                print(
                    f"storage {shown}: cannot reach the database ({type(orig).__name__}:"
                    f" {said[:200]}); trying again for up to {patience:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(min(_PAUSE[min(attempt, len(_PAUSE) - 1)], patience - waited))
            attempt += 1
            continue
        if attempt:
            waited = time.monotonic() - started
            print(f"storage {shown}: the database answers after {waited:.0f} s", file=sys.stderr)
        return result


def refused(exc: BaseException) -> bool:
    """Whether the database refused the statement (SQLAlchemy's error, which Optuna wraps
    in a StorageInternalError that says "invalid data"): a role without the privilege,
    a read-only server. Optuna's own errors (a duplicated study, a finished trial) and
    others are left as they are."""
    from sqlalchemy import exc as sa

    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    return isinstance(exc, sa.SQLAlchemyError)


# Writes to a trial another driver closed (it took this driver's trials over): dropped.
_TAKEN_OVER_WRITES = frozenset(
    {
        *("set_trial_param", "_set_trial_param", "set_trial_user_attr"),
        *("set_trial_system_attr", "set_trial_intermediate_value"),
    }
)


def _retrying(name: str, method: F) -> F:
    @functools.wraps(method)
    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        waited_since: float | None = None
        attempt, patience = 0, reconnect_for()
        while True:
            try:
                result = method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempt and name == "set_trial_state_values" and _already(self, args):
                    return True  # the lost answer's commit went through
                if name in _TAKEN_OVER_WRITES:  # as the journal does (replay.TAKEN_OVER_WRITES)
                    return None
                raise
            except Exception as exc:
                if not (self.server and connection_lost(exc)):
                    if refused(exc):  # e.g. a read-only role: Optuna's message blames the data
                        raise StorageError(
                            f"storage {self.shown}: the database refused {name.strip('_')}:"
                            f" {_detail(self, exc)}"
                        ) from None
                    raise
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                    self.notify(
                        f"lost the database ({_detail(self, exc)}); trying again for up to"
                        f" {patience:.0f} s"
                    )
                if now - waited_since >= patience:
                    raise StorageError(
                        f"storage {self.shown}: the database did not answer for"
                        f" {patience:.0f} s ({_detail(self, exc)}); every finished trial is"
                        " kept: run the same command again to resume"
                    ) from None
                time.sleep(_PAUSE[min(attempt, len(_PAUSE) - 1)])
                attempt += 1
                continue
            if waited_since is not None:
                global _answered_again
                _answered_again = time.monotonic()
                waited = _answered_again - waited_since
                self.notify(f"the database answers again after {waited:.0f} s")
            return result

    return call  # type: ignore[return-value]


def _already(storage: RDBStorage, args: tuple[Any, ...]) -> bool:
    """Whether the trial of a retried ``set_trial_state_values`` is in the state asked."""
    trial_id, state = args[0], args[1]
    return isinstance(state, TrialState) and storage.get_trial(trial_id).state == state


def _detail(storage: RDBStorage, exc: BaseException) -> str:
    """The driver's own error, in one line, without the URL's password."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    orig = getattr(root, "orig", None) or root
    text = " ".join(str(orig).split())
    for secret in secrets_in(storage.url):  # a driver's message may quote it
        text = text.replace(secret, "***")
    return f"{type(orig).__name__}: {text[:200]}"


class ResilientRDBStorage(RDBStorage):
    """RDBStorage whose calls outlast a database restart (module docstring)."""

    shown = "(database)"  # the URL without its password, for messages
    # A database server, whose connections come back. SQLite's OperationalError is the
    # file (locked past its timeout, read-only, a disk error): said at once.
    server = True

    def notify(self, line: str) -> None:
        print(f"storage {self.shown}: {line}", file=sys.stderr, flush=True)


# Every call that reaches the database: BaseStorage's API (a public call that makes a
# private one below is tried again inside it, then gives up once).
for _name in (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    # What Optuna's _CachedStorage, in front of it in a study, calls instead.
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
    "_get_trials",
):
    setattr(ResilientRDBStorage, _name, _retrying(_name, getattr(RDBStorage, _name)))
