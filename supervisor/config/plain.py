"""A space given as Python data (the Python API) made plain YAML data before it is
validated and kept: what a notebook naturally builds (numpy numbers and arrays, tuples,
an ``OrderedDict``, a ``Path``) is what it means; anything else is named by its key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from supervisor.errors import UserError

MAX_DEPTH = 64  # a mapping that holds itself (the space parser names deeper than 32)


def plain(value: Any, path: str = "space", depth: int = 0) -> Any:
    """``value`` as the str, int, float, bool, None, list and dict that YAML writes."""
    if depth > MAX_DEPTH:
        raise UserError(f"{path[:160]}...: nested deeper than {MAX_DEPTH} levels")
    if value is None or type(value) in (str, int, float, bool):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # np.float64(0.1)
        listed = value.tolist()
        if type(listed).__module__ != "numpy":
            return plain(listed, path, depth + 1)
    if isinstance(value, Mapping):
        return {key: plain(item, f"{path}.{key}", depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        return plain(os.fspath(value), path, depth + 1)
    for kind in (bool, int, float, str):  # subclasses: an IntEnum, a str subclass
        if isinstance(value, kind):
            return kind(value)
    raise UserError(
        f"{path[:160]}: {type(value).__name__} {str(value)[:60]!r}: not plain YAML data"
        " (expected text, a number, true/false, a list or a mapping)"
    )
