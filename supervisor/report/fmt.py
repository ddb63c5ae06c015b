"""Reading trial records (``supervisor.study.records``), and writing values as short text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.study.records import TrialRecord


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(record: TrialRecord) -> float | None:
    """Seconds the trial ran on its worker (the driver's ``duration_s``), else by Optuna."""
    if record.duration is not None:
        return record.duration
    if record.datetime_start is not None and record.datetime_complete is not None:
        return (record.datetime_complete - record.datetime_start).total_seconds()
    return None


def start_time(record: TrialRecord) -> float | None:
    """Unix time the trial started on its worker, else when the driver asked for it."""
    if record.started:
        return record.started
    return record.datetime_start.timestamp() if record.datetime_start is not None else None


def end_time(record: TrialRecord) -> float | None:
    if record.finished:
        return record.finished
    return record.datetime_complete.timestamp() if record.datetime_complete is not None else None


def worker(record: TrialRecord) -> str:
    return record.where


def error(record: TrialRecord) -> str:
    return record.error or ""


def outcome(record: TrialRecord) -> str:
    """The state, with the kind of failure: "FAIL (model)", "FAIL (infrastructure)"..."""
    name = record.state.name
    if name == "FAIL":
        return f"FAIL ({record.failure or 'unknown'})"
    return name


def number(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def seconds(value: float) -> str:
    """A duration for people: "4.2 s", "3 min 07 s", "5 h 02 min", "3 d 04 h". The one
    formatter of durations: reports and ``supervisor status`` both use it."""
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
        key in ("started", "finished")  # keys of the run information, not of a trial
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


def history(record: TrialRecord) -> tuple[Mapping[str, Any], ...]:
    """The per-epoch metrics the driver stores (entries {"epoch": e, metric: value})."""
    return record.history
