"""Typed reads of YAML values with one-line errors (``file:line:col: key: problem``).

The space-file parser and the launcher-profile parser both build on ``Reader``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from supervisor.config.yaml_source import KeyPath, YamlSource
from supervisor.errors import SpaceError, did_you_mean

MAX_INT = 2**53  # beyond this, float round trips in storage lose integers
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def duration_seconds(text: str) -> float | None:
    """``90s``, ``30m``, ``2h``, ``1h30m``, ``1d`` (or plain seconds) in seconds; None when
    ``text`` is neither."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if not text or not (m := DURATION.match(text)):
        return None
    d, h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return d * 86400 + h * 3600 + mins * 60 + s


class Reader:
    def __init__(self, src: YamlSource) -> None:
        self.src = src

    def err(self, path: KeyPath, message: str) -> SpaceError:
        return self.src.error(path, message)

    def mapping(self, value: Any, path: KeyPath, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping of {', '.join(keys)}, got {kind_of(value)}")
        for key in value:
            if key not in keys:
                raise self.err(
                    (*path, key),
                    f"unknown key{did_you_mean(key, keys)}; expected one of {', '.join(keys)}",
                )
        return value

    def integer(self, value: Any, path: KeyPath, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.err(path, f"expected an integer, got {kind_of(value)}")
        if not low <= value <= high:
            raise self.err(path, f"expected an integer between {low} and {high}, got {value}")
        return value

    def number(self, value: Any, path: KeyPath) -> float | int:
        if isinstance(value, str) and looks_numeric(value):
            raise self.err(
                path,
                f"got the text {value!r}: YAML reads this as text; write exponents with a dot"
                " and a sign, e.g. 1.0e-4 or 1.0e+6",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.err(path, f"expected a number, got {kind_of(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.err(path, f"expected a finite number, got {value}")
        if abs(value) > 1e300 or (isinstance(value, int) and abs(value) > MAX_INT):
            raise self.err(path, f"number too large: {value}")
        return value

    def string(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.err(path, f"expected a non-empty string, got {kind_of(value)}")
        return value

    def duration(self, value: Any, path: KeyPath) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and value and DURATION.match(value.strip()):
            seconds = duration_seconds(value) or 0.0
        else:
            raise self.err(
                path, f"expected seconds or a duration like '90m' or '2h30m', got {value!r}"
            )
        if not 0 < seconds < 366 * 86400 or not math.isfinite(seconds):
            raise self.err(path, f"expected a positive duration under a year, got {value!r}")
        return seconds


def looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"
