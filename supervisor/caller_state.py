"""What the Python API keeps of its caller's interpreter: a notebook's own settings are its
own again after a call, and a run is where it was when the call made it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def callers_optuna_logging() -> Iterator[None]:
    """The commands quiet Optuna's log (a line per trial told): the caller's own level,
    a notebook's that studies with Optuna too, is its own again after the call."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def here() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # a working directory removed since
        return None
