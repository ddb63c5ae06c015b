"""Values a benchmark receives and a study stores: plain JSON data.

The resolved experiment (fixed values, benchmark and sampler options) is stored with the
study and every trial's parameters go through Optuna's storage, both as JSON. A value
JSON cannot hold (a YAML date, ``!!binary`` bytes, NaN) would pass validation and then
fail the run after it started writing, so it is refused where it is read.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

Where = tuple[str | int, ...]


def storable_problem(value: Any, where: Where = ()) -> tuple[Where, str] | None:
    """(where inside ``value``, what is wrong) for the first part JSON storage cannot keep
    as it is, or None when all of it can."""
    if value is None or isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"expected a finite number, got {value}")
    if isinstance(value, datetime.datetime | datetime.date):
        what = "timestamp" if isinstance(value, datetime.datetime) else "date"
        return (
            where,
            f"YAML reads {value.isoformat()} as a {what}, which the study cannot store;"
            " quote it to pass it as text",
        )
    if isinstance(value, bytes | bytearray):
        return (where, "binary data (!!binary) cannot be stored with the study")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = storable_problem(item, (*where, i))
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (where, f"keys must be strings, got {key!r}")
            found = storable_problem(item, (*where, key))
            if found:
                return found
        return None
    return (where, f"a {type(value).__name__} cannot be stored with the study")
