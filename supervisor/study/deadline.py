"""A driver's timeout (``budget.timeout``), recorded where ``supervisor status`` reads it.

At its timeout a driver starts no new trial (running ones finish), so a campaign that
would need 5 h at its pace ends in the 20 min its timeout leaves: ``status`` bounds its
ETA by it. Each driver records its own end (``attrs.DEADLINE_PREFIX`` + its id) as a Unix
time: each session of a campaign (a resume, a link of a ``submit`` chain) has its own
timeout, counted from its own start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna


def start(study: optuna.Study, driver: str, timeout: float | None, started: float) -> float:
    """The ``time.monotonic()`` at which ``driver``, started at ``started``, reaches its
    ``timeout`` (inf without one), recorded in ``study`` as a Unix time."""
    if not timeout:
        return math.inf
    unix = time.time() - (time.monotonic() - started) + timeout
    study.set_user_attr(attrs.DEADLINE_PREFIX + driver, unix)
    return started + timeout


def ends(study_attrs: Mapping[str, Any], drivers: Iterable[str]) -> float | None:
    """The Unix time after which ``drivers`` start no trial: the last of their timeouts;
    None when one of them has none (it runs to the budget) or there are no drivers."""
    found = [study_attrs.get(attrs.DEADLINE_PREFIX + driver) for driver in drivers]
    numbers = [v for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
    if not found or len(numbers) < len(found) or not all(map(math.isfinite, numbers)):
        return None
    return float(max(numbers))


def timed_out(study_attrs: Mapping[str, Any], ends: Mapping[str, float]) -> bool:
    """Whether the campaign's last session ended at its timeout. ``ends``: each driver's
    last trial end (Unix time). The last session is the driver whose trials ended last;
    at its timeout it started no new trial and its running ones finished after it, where
    a session stopped before (Ctrl-C, a crash) ended them all before its timeout."""
    if not ends:
        return False
    driver = max(ends, key=lambda d: ends[d])
    end = ends[driver]
    limit = study_attrs.get(attrs.DEADLINE_PREFIX + driver)
    return isinstance(limit, int | float) and not isinstance(limit, bool) and end >= limit
