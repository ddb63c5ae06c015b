"""The failures table: kinds of failure, then the most recent failed trials with their
error messages and the end of their tracebacks (all escaped: they are arbitrary text)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from supervisor.report import fmt
from supervisor.report.page import Html, details, esc, note, table

if TYPE_CHECKING:
    from supervisor.report.campaign import Campaign

FAILURE_ROWS = 50
KIND_ROWS = 20  # kinds of failure listed, the most frequent first
ERROR_CHARS = 500
TRACEBACK_CHARS = 2000  # the end of a traceback is where the error is


def failures(camp: Campaign) -> list[Html]:
    failed = camp.failed
    groups = Counter(
        (camp.record(t).failure or "", camp.record(t).error_type or "") for t in failed
    )
    common = groups.most_common(KIND_ROWS)
    rows: list[list[object]] = [[k, e, n] for (k, e), n in common]
    if len(groups) > KIND_ROWS:  # the rest counted, not dropped without a word
        rest = len(failed) - sum(n for _, n in common)
        rows.append(["…", f"{len(groups) - KIND_ROWS} more error types", rest])
    kinds = table(["failure", "error type", "trials"], rows, numeric=[2])
    recent = sorted(failed, key=lambda t: t.number, reverse=True)[:FAILURE_ROWS]
    shown = (
        f"The {len(recent)} most recent of {len(failed)} failed trials."
        if len(failed) > len(recent)
        else f"{len(failed)} failed trial{'s' if len(failed) != 1 else ''}."
    )
    rows = []
    for t in recent:
        record = camp.record(t)
        message = Html(f'<div class="error">{esc(fmt.clip(fmt.error(record), ERROR_CHARS))}</div>')
        trace = record.traceback
        if trace:
            tail = trace if len(trace) <= TRACEBACK_CHARS else "…" + trace[-TRACEBACK_CHARS:]
            message = Html(message + details("traceback", Html(f"<pre>{esc(tail)}</pre>")))
        rows.append(
            [
                t.number,
                record.failure or "",
                record.error_type or "",
                message,
                fmt.worker(record),
            ]
        )
    listing = table(["trial", "failure", "error type", "error", "worker"], rows, numeric=[0])
    return [kinds, note(shown), listing]
