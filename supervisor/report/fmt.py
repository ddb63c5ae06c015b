"""Reading the supervisor's trial attributes, and writing values as short text."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

from supervisor.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _attr_seconds(trial: FrozenTrial, key: str) -> float | None:
    value = trial.user_attrs.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    return None


def duration(trial: FrozenTrial) -> float | None:
    """Seconds the trial ran on its worker (the driver's ``duration_s``), else by Optuna."""
    value = _attr_seconds(trial, "duration_s")
    if value is not None:
        return value
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def start_time(trial: FrozenTrial) -> float | None:
    """Unix time the trial started on its worker, else when the driver asked for it."""
    value = _attr_seconds(trial, "started")
    if value:
        return value
    return trial.datetime_start.timestamp() if trial.datetime_start is not None else None


def end_time(trial: FrozenTrial) -> float | None:
    value = _attr_seconds(trial, "finished")
    if value:
        return value
    return trial.datetime_complete.timestamp() if trial.datetime_complete is not None else None


def worker(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("worker") or trial.user_attrs.get("hostname") or "")


def error(trial: FrozenTrial) -> str:
    message = trial.user_attrs.get("error")
    if message:
        return str(message)
    # Where older Optuna versions kept the exception of a plain study's failed trial.
    return str(trial.system_attrs.get("fail_reason", ""))


def outcome(trial: FrozenTrial) -> str:
    """The state, with the kind of failure: "FAIL (model)", "FAIL (infrastructure)"..."""
    name = trial.state.name
    if name == "FAIL":
        return f"FAIL ({trial.user_attrs.get(attrs.FAILURE) or 'unknown'})"
    return name


def number(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def time_of_day(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def info(key: str, value: object) -> str:
    """A value of the run information as text; Unix times (as stored) read as dates."""
    if (
        key in ("started", "finished")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 1e9 < value < 1e11
    ):
        return time_of_day(dt.datetime.fromtimestamp(value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return number(value)


def yaml_text(config: object) -> str:
    try:
        import yaml

        return str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100))
    except Exception:  # not plain data: JSON with str() for the rest is good enough to read
        return json.dumps(config, indent=2, default=str)


def history(trial: FrozenTrial) -> list[dict[str, Any]]:
    """The per-epoch metrics the driver stores (a list of {"epoch": e, metric: value})."""
    value = trial.user_attrs.get("history")
    if isinstance(value, list):
        return [entry for entry in value if isinstance(entry, dict)]
    return []
