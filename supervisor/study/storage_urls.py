"""What a storage URL must be before it is opened: a Python driver for its database
(``with_driver``), an SQLite URL that can hold a campaign (``sqlite_problem``), and a new
journal or SQLite file made owner-only (``private_file``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from supervisor.errors import UserError

# SQLAlchemy dialect -> (driver name, module) in order of preference, and what to install.
DRIVERS: dict[str, tuple[list[tuple[str, str]], str]] = {
    "postgresql": ([("psycopg", "psycopg"), ("psycopg2", "psycopg2")], "psycopg[binary]"),
    "mysql": ([("mysqldb", "MySQLdb"), ("pymysql", "pymysql")], "mysqlclient"),
}


# What SQLite's driver reads from a sqlite:// URL's query; SQLAlchemy drops any other key
# with a warning (``?mode=ro`` would seem to take effect and not). ``uri=true`` (SQLite URI
# filenames) is refused too: the file, and whether it is in memory, hide in the URI.
SQLITE_QUERY_KEYS = (
    "timeout",
    "isolation_level",
    "detect_types",
    "check_same_thread",
    "cached_statements",
)


def sqlite_problem(url: str) -> str | None:
    """Why an SQLite URL cannot hold a campaign, or None: an in-memory database is gone
    when the command ends (and a search's results with it); a query key its driver
    ignores would not do what it says."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not an SQLAlchemy URL: left to whoever opens it
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        return (
            "an in-memory database keeps nothing after the command;"
            " give a file (sqlite:///path/to/x.db)"
        )
    ignored = sorted(set(parsed.query) - set(SQLITE_QUERY_KEYS))
    if ignored:
        return (
            f"query key {', '.join(ignored)} not supported (only {', '.join(SQLITE_QUERY_KEYS)})"
        )
    return None


def with_driver(url: str, shown: str) -> str:
    """``postgresql://`` -> ``postgresql+psycopg://`` (or +psycopg2), the driver installed."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if "+" in scheme or scheme not in DRIVERS:
        return url  # an explicit driver, or a dialect SQLAlchemy handles alone (sqlite)
    choices, package = DRIVERS[scheme]
    for driver, module in choices:
        if importlib.util.find_spec(module) is not None:
            return f"{scheme}+{driver}{sep}{rest}"
    raise UserError(
        f"--storage {shown!r}: {scheme} needs a Python driver (pip install '{package}')"
    )


def sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names (None: another database, or none)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not an SQLAlchemy URL: its driver says what is wrong
        return None
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    return None if database in (None, "", ":memory:") else database


@contextlib.contextmanager
def private_file(path: str | None) -> Iterator[None]:
    """Inside the block, the storage file ``path`` exists: made owner-only (0600) whatever
    the umask when it was missing. Optuna's journal and SQLite made it with the umask's
    mode (0644 under the usual 022: on a shared file system every user read the
    campaign's configuration and its trials' errors). A file that exists keeps its mode:
    one shared on purpose stays so. SQLite gives its journal and WAL files the database's
    mode. A storage that fails to open leaves no empty file made here."""
    made = False
    if path:
        with contextlib.suppress(OSError):  # there already, or no folder: the library says
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            made = True
    try:
        yield
    except BaseException:
        if made and path and os.path.getsize(path) == 0:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
