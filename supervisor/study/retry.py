"""When a trial's worker goes away: run its parameters again, or blame them.

A worker that dies (a node lost, the job killed, the process out of memory) takes with it
the trial it was running and the trials queued behind it. The trial is recorded as an
infrastructure failure and its parameters are queued again (``recovery.requeue``), as
attempt n + 1 of the same retry chain. Only a trial that *ran* when its worker died uses
up an attempt: one that was merely queued there (its start never reached the driver) is
re-queued without one, so an innocent trial never ends as ``WorkerDiedRepeatedly``.

A trial that kills its worker within its first second has not announced its start yet
(short trials stream nothing, see ``supervisor.execution.channel``) and looks queued; so
that it cannot loop forever, a chain is blamed after ``UNSTARTED_FACTOR`` times the
attempts in worker deaths of either kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from supervisor.study import attrs

MAX_ATTEMPTS = 3  # deaths of its worker while it ran before a trial is blamed
UNSTARTED_FACTOR = 2

# How a re-run came about: its worker died while it ran ("ran"), while it waited in the
# worker's queue ("queued"), or not by its worker at all ("stopped": an interruption,
# a timeout, its driver lost), which is never the trial's fault.
Cause = Literal["ran", "queued", "stopped"]


def attempt(user_attrs: Mapping[str, Any]) -> int:
    """1 + the worker deaths this configuration ran through."""
    return int(user_attrs.get(attrs.ATTEMPT, 1))


def unstarted(user_attrs: Mapping[str, Any]) -> int:
    """Worker deaths this configuration met while queued (never started)."""
    return int(user_attrs.get(attrs.UNSTARTED, 0))


def blame(
    user_attrs: Mapping[str, Any], started: bool, max_attempts: int, error: str
) -> str | None:
    """The message of a ``WorkerDiedRepeatedly`` failure when this death of its worker is
    one too many for the trial (``user_attrs``: the trial's), else None: run it again."""
    ran = attempt(user_attrs)
    queued = unstarted(user_attrs) + (0 if started else 1)
    if started and ran >= max_attempts:
        # Its worker died every time it ran: the trial itself is the likely cause (OOM).
        return f"its worker died on all {ran} attempts; last: {error}"
    deaths = ran - (0 if started else 1) + queued
    if deaths >= UNSTARTED_FACTOR * max_attempts:
        return (
            f"its worker died {deaths} times ({queued} before its start was announced);"
            f" last: {error}"
        )
    return None


def rerun_attrs(user_attrs: Mapping[str, Any], number: int, cause: Cause) -> dict[str, Any]:
    """The user attributes of the re-run of trial ``number`` (its ``user_attrs``): which
    chain it continues, its counts, and what a re-run must keep (an ensemble member's
    seed)."""
    retry_of = user_attrs.get(attrs.RETRY_OF)
    out = {k: user_attrs[k] for k in attrs.CARRIED if k in user_attrs}
    out[attrs.ATTEMPT] = attempt(user_attrs) + (1 if cause == "ran" else 0)
    queued = unstarted(user_attrs) + (1 if cause == "queued" else 0)
    if queued:
        out[attrs.UNSTARTED] = queued
    out[attrs.RETRY_OF] = retry_of if retry_of is not None else number
    out[attrs.RERUN_OF] = number  # the key that tells a later recovery it is queued
    return out
