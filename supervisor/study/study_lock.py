"""A lock of one study held across processes and hosts on a database storage, so that a
check and the writes it decides (a warm start's import, an ensemble's member queue) are
one step. The campaign journal has its own file lock (``journal_file``).

PostgreSQL: a session advisory lock (``pg_advisory_lock``) on a connection of its own. It
waits only for other takers of the same lock, never for Optuna's writes through the pool,
and the server drops it when its holder dies. MySQL: ``GET_LOCK``, the same. SQLite: an
``flock`` on a file beside the database. Any other database runs the block unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

SQLITE_LOCK_SUFFIX = ".supervisor-lock"


@contextlib.contextmanager
def study_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    engine: Any = storage.engine
    dialect = engine.dialect.name
    name = f"supervisor:{study_name}"
    if dialect == "postgresql":
        key = zlib.crc32(name.encode()) - 2**31  # the lock's key: a signed 32-bit number
        with _holding(
            engine, "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)", k=key
        ):
            yield
    elif dialect in ("mysql", "mariadb"):
        with _holding(engine, "SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)", k=name[:64]):
            yield
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        fd = os.open(engine.url.database + SQLITE_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
    else:
        yield


@contextlib.contextmanager
def _holding(engine: Any, take: str, release: str, **key: Any) -> Iterator[None]:
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text(take), key)
        try:
            yield
        finally:
            conn.execute(text(release), key)
