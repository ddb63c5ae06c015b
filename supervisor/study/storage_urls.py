"""What a storage URL must be before it is opened: a Python driver for its database
(``with_driver``), and an SQLite URL that can hold a campaign (``sqlite_problem``)."""

from __future__ import annotations

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
