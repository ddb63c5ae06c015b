"""Benchmark modules named by another user's run are not imported unless trusted.

A run records its benchmark as a name or a ``module:Class`` (its stored space). Commands
that rebuild a trial or read a run's class names (``rerun``, ``export --model``,
``report``, ``Run.model``, ``Run.benchmark``) import that module: on a colleague's run in
a shared folder, a module of theirs on the reader's path (a plugin beside the run, their
folder on PYTHONPATH) ran its code as the reader. While a command reads a run that is
not the reader's own (``reading``), ``registry.load`` imports only an installed benchmark
(a built-in or an entry point's) or one the reader names in ``TRUST_ENV``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import supervisor.rundir as rundir
from supervisor.errors import UserError

# Benchmark targets ("module:Class") of another user's runs that this user accepts to
# import, separated by spaces.
TRUST_ENV = "SUPERVISOR_TRUSTED_BENCHMARKS"
# The run being read, with its owner's uid, while it is another user's.
_foreign: ContextVar[tuple[Path, int] | None] = ContextVar("foreign_run", default=None)
F = TypeVar("F", bound=Callable[..., Any])


class ForeignCode(UserError):
    """A benchmark of another user's run, not imported."""


@contextlib.contextmanager
def reading(run_dir: Path) -> Iterator[None]:
    """Benchmarks loaded inside are checked when ``run_dir`` is another user's."""
    found = rundir.foreign_owner(run_dir)
    token = _foreign.set(found if found is not None else _foreign.get())
    try:
        yield
    finally:
        _foreign.reset(token)


def reads_run(method: F) -> F:
    """``reading(self.run_dir)`` around a method of ``supervisor.Run``."""

    @functools.wraps(method)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with reading(self._at(self.run_dir)):
            return method(self, *args, **kwargs)

    return checked  # type: ignore[return-value]


def check(target: str, installed: set[str]) -> None:
    """Refuse, before it is imported, a benchmark ``target`` that another user's run
    names, unless it is ``installed`` or the user trusts it (``TRUST_ENV``)."""
    found = _foreign.get()
    if found is None or target in installed or target in os.environ.get(TRUST_ENV, "").split():
        return
    path, owner = found
    raise ForeignCode(
        f"{path}: written by another user (uid {owner}); its benchmark {target} is not an"
        f" installed one, and importing it would run their code as you: not imported unless"
        f" you name it: {TRUST_ENV}='{target}'"
    )
