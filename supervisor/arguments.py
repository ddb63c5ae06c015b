"""Checks of the Python API's arguments, before anything runs: a wrong type or value is
one ``UserError`` naming the argument, as the command names its flag, never an
``AttributeError`` from deep inside (``supervisor.api``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from supervisor.errors import UserError

# search()'s text arguments; None is their default, except the last one's.
TEXT_FLAGS = ("study", "storage", "scheduler", "launcher", "dashboard", "proposer")
REQUIRED_TEXT = ("proposer",)
COUNT_FLAGS = ("trials", "epochs", "workers", "threads", "prefetch")


def check_path(name: str, value: Any) -> None:
    if not isinstance(value, str | Path):
        raise UserError(f"{name}: expected a path, got {value!r}"[:200])
    if isinstance(value, str) and not value.strip():  # Path("") is the current folder
        raise UserError(f"{name} {value!r}: expected a path ('.' for the current folder)")


def check_text(name: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise UserError(f"{name}: expected text, got {value!r}"[:200])


def check_flags(flags: dict[str, Any]) -> None:
    """``search``'s keyword arguments that the command's parser would have typed."""
    if not isinstance(flags.get("report", True), bool):  # "no" would write one
        raise UserError(f"report: expected True or False, got {flags['report']!r}"[:200])
    for name in TEXT_FLAGS:
        if name in flags:
            check_text(name, flags[name], optional=name not in REQUIRED_TEXT)
    for name in COUNT_FLAGS:
        if name in flags:
            flags[name] = as_int(flags[name])
    if isinstance(flags.get("timeout"), str):  # as budget.timeout: 5400, 90m, 1h30m
        from supervisor.config.reader import duration_seconds

        flags["timeout"] = duration_seconds(flags["timeout"]) or flags["timeout"]


def as_int(value: Any) -> Any:
    """An integer of another type (numpy's int64, from a DataFrame or an array) as an int;
    anything else as it is, for the command's own check to name."""
    import operator

    if isinstance(value, int) or type(value).__module__ != "numpy":
        return value
    with contextlib.suppress(TypeError):
        return operator.index(value)
    return value


def check_progress(progress: Any) -> None:
    if progress not in ("auto", "plain", "none"):
        raise UserError(f"progress: expected auto, plain or none, got {progress!r}"[:200])


def run_names(warm_start: Any) -> tuple[str, ...]:
    """``warm_start`` as run names: one name or path alone is one run (a string is not
    split into its letters)."""
    if isinstance(warm_start, str | Path):
        warm_start = (warm_start,)
    if not isinstance(warm_start, Sequence) or not all(
        isinstance(run, str | Path) for run in warm_start
    ):
        raise UserError(f"warm_start: expected run names or paths, got {warm_start!r}"[:200])
    return tuple(str(run) for run in warm_start)


def space_data(space: Any) -> dict[str, Any] | None:
    """The mapping behind ``space`` when it is no file."""
    from supervisor.config.experiment import Experiment

    if isinstance(space, (str, Path)):
        return None
    if isinstance(space, Experiment):
        return {**space.raw, "study": space.study_name}
    if isinstance(space, Mapping):
        return dict(space)
    raise UserError(
        f"space: expected a file path, a mapping or an Experiment, got {type(space).__name__}"
    )


def trial_number(value: Any) -> int:
    """A trial number: an int, or any integer type (a number from ``run.trials``, a
    DataFrame, is numpy's int64); not True or "3"."""
    import operator

    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        with contextlib.suppress(TypeError):
            return operator.index(value)
    raise UserError(f"trial: expected a trial number, got {value!r}"[:200])
