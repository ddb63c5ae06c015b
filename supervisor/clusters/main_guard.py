"""A script that starts a local cluster at its top level, without the main guard.

The local cluster's worker processes are started by multiprocessing's "spawn": each
imports the script that started the campaign again. A ``supervisor.search(...)`` at the
script's top level then runs once more in every worker, which fails there with screens
of Dask tracebacks (multiprocessing's "bootstrapping phase" message somewhere inside).
This finds that case before any process starts and says it in one line.
"""

from __future__ import annotations

import ast
import contextlib
import sys
from pathlib import Path
from types import FrameType

from supervisor.errors import UserError


def check_main_guard() -> None:
    """Raise a ``UserError`` when this call comes from the top level of a ``__main__``
    script outside ``if __name__ == "__main__":``, in a script spawned workers import."""
    main = sys.modules.get("__main__")
    if main is None or not _imported_by_workers(main):
        return
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (
        frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:  # not while the script runs (a notebook cell, a function called later)
        return
    file = frame.f_code.co_filename
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):  # no source to read: assume it is guarded
        return
    line = frame.f_lineno
    if any(_guards(node, line) for node in ast.walk(tree)):
        return
    with contextlib.suppress(ValueError):  # as the user named it, from the working directory
        file = str(Path(file).relative_to(Path.cwd()))
    raise UserError(
        f"{file}:{line}: this starts Dask worker processes, which import {Path(file).name}"
        ' again and would run this line there too: put it under if __name__ == "__main__":'
    )


def _imported_by_workers(main: object) -> bool:
    """Whether multiprocessing's spawn runs the main module again in its children (as
    ``multiprocessing.spawn`` decides it)."""
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name is not None:  # python -m module: imported by name, unless it is a __main__
        return name != "__main__" and not name.endswith(".__main__")
    file = getattr(main, "__file__", None)
    return file is not None and Path(file).stem != "ipython"


def _guards(node: ast.AST, line: int) -> bool:
    """``node`` is an ``if`` on ``__name__`` (``if __name__ == "__main__":`` and its
    variants) that holds ``line`` in a branch."""
    if not isinstance(node, ast.If):
        return False
    names = (n.id for n in ast.walk(node.test) if isinstance(n, ast.Name))
    if "__name__" not in names:
        return False
    return any(
        branch[0].lineno <= line <= (branch[-1].end_lineno or line)
        for branch in (node.body, node.orelse)
        if branch
    )
