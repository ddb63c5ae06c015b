"""Where the time went: the worker timeline (the cost per outcome is
``supervisor.report.cost_section``).

The timeline has one row per worker and one bar per trial from the time it started on
that worker to the time it finished (or now, for a running trial), coloured by outcome:
idle gaps show as empty stretches of a row, stragglers as long bars, a bad node as a row
of red. Bars of one outcome are one plotly trace with numeric arrays, so 10,000 bars stay
a few hundred kB.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.report import cost, fmt
from supervisor.report.page import Html, Page, kv_table, note, table
from supervisor.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign

TIMELINE_TRIALS = 10_000  # most recent bars drawn; beyond, the browser slows down
STRAGGLER_FACTOR = 3.0  # a straggler takes this many times the median duration
STRAGGLERS_LISTED = 10
WORKER_LABELS = 80  # more workers than this: rows are numbered, the hover names them
UNASSIGNED = "(worker not reported yet)"
ORPHANED = "RUNNING (driver gone)"
COLOURS = {
    "COMPLETE": "#2da44e",
    "PRUNED": "#d4a72c",
    "FAIL (model)": "#cf222e",
    "FAIL (infrastructure)": "#8250df",
    "FAIL (interrupted)": "#6e7781",
    "RUNNING": "#0969da",
    ORPHANED: "#9ecbff",
}


@dataclass(frozen=True)
class Span:
    trial: FrozenTrial
    worker: str
    start: float  # Unix seconds
    end: float
    outcome: str

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


def spans(camp: Campaign) -> list[Span]:
    """Every trial that has started on a worker, from its start to its end: now for a
    running trial, the campaign's last sign of life for one whose driver is gone. Trials
    no worker ran (told by warm start or a twin's result, surplus ones) have no span."""
    lost = camp.orphans
    last_sign = _last_sign_of_life(camp) if lost else camp.now
    out = []
    for trial in camp.trials:
        record = camp.record(trial)
        start = fmt.start_time(record)
        if start is None or cost.outcome(record) is None:
            continue
        outcome = fmt.outcome(record)
        end = fmt.end_time(record)
        if end is None:
            seconds = fmt.duration(record)
            end = start + seconds if seconds is not None else camp.now
        if trial.number in lost:
            outcome, end = ORPHANED, max(start, last_sign)
        out.append(Span(trial, fmt.worker(record) or UNASSIGNED, start, end, outcome))
    return out


def _last_sign_of_life(camp: Campaign) -> float:
    """The latest time the study records: a trial's end or a driver's heartbeat."""
    times = [e for e in (fmt.end_time(camp.record(t)) for t in camp.trials) if e is not None]
    times += [
        float(v)
        for k, v in camp.user_attrs.items()
        if k.startswith(attrs.HEARTBEAT_PREFIX) and isinstance(v, (int, float))
    ]
    return max(times, default=0.0)


def timeline(camp: Campaign, page: Page) -> list[Html]:
    all_spans = spans(camp)
    if not all_spans:
        return [note("No trial has started yet.")]
    out: list[Html] = []
    shown = sorted(all_spans, key=lambda s: s.start)[-TIMELINE_TRIALS:]
    if len(shown) < len(all_spans):
        out.append(note(f"The {len(shown)} most recent of {len(all_spans)} trials."))
    out.append(page.draw("worker timeline", lambda: _timeline_figure(shown), _height(shown)))
    orphans = sum(1 for s in all_spans if s.outcome == ORPHANED)
    if orphans:
        out.append(
            note(
                f"Trials RUNNING in storage whose driver is gone: {orphans}. They are drawn "
                "up to the campaign's last sign of life; the next `supervisor search` closes "
                "them and runs their parameters again."
            )
        )
    out.append(kv_table(_utilisation(all_spans)))
    out += _stragglers(all_spans)
    return out


def _height(shown: list[Span]) -> int:
    rows = len({s.worker for s in shown})
    return int(min(1400, max(320, 140 + 14 * rows)))


def _local_ms(seconds: float) -> float:
    """Milliseconds for plotly's date axis, which shows them as UTC: local wall-clock time."""
    local = dt.datetime.fromtimestamp(seconds)
    return (local - dt.datetime(1970, 1, 1)).total_seconds() * 1000.0


def _timeline_figure(shown: list[Span]) -> Any:
    import numpy as np
    import plotly.graph_objects as go

    workers = sorted({s.worker for s in shown}, key=_natural)
    row = {w: i for i, w in enumerate(workers)}
    fig = go.Figure()
    for outcome in sorted({s.outcome for s in shown}, key=_outcome_order):
        group = [s for s in shown if s.outcome == outcome]
        fig.add_trace(
            go.Bar(
                orientation="h",
                base=np.array([_local_ms(s.start) for s in group]),
                x=np.array([s.seconds * 1000.0 for s in group], np.float32),
                y=np.array([row[s.worker] for s in group]),
                customdata=np.array([[s.trial.number, s.seconds] for s in group], np.float32),
                hovertext=[s.worker for s in group],
                name=f"{outcome} ({len(group)})",
                marker={"color": COLOURS.get(outcome, "#57606a"), "line": {"width": 0}},
                hovertemplate=(
                    f"trial #%{{customdata[0]}}, {outcome}<br>%{{hovertext}}<br>"
                    "%{customdata[1]:.1f} s from %{base|%H:%M:%S}<extra></extra>"
                ),
            )
        )
    labelled = len(workers) <= WORKER_LABELS
    fig.update_layout(
        title="Trials per worker over time",
        barmode="overlay",
        bargap=0.15,
        xaxis={"type": "date", "title": "time"},
        yaxis={
            "title": "worker" if labelled else f"worker (1 of {len(workers)} rows)",
            "tickmode": "array",
            "tickvals": list(range(len(workers))) if labelled else [],
            "ticktext": workers if labelled else [],
            "autorange": "reversed",
            "automargin": True,
        },
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )
    return fig


def _natural(text: str) -> list[Any]:
    """Sort key in which node2 comes before node10 and 10.0.2.1 before 10.0.10.1."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _outcome_order(outcome: str) -> int:
    order = list(COLOURS)
    return order.index(outcome) if outcome in order else len(order)


def _utilisation(all_spans: list[Span]) -> list[tuple[object, object]]:
    """Busy share of each worker between its first start and the campaign's last end."""
    by_worker: dict[str, list[Span]] = defaultdict(list)
    for s in all_spans:
        by_worker[s.worker].append(s)
    by_worker.pop(UNASSIGNED, None)
    if not by_worker:
        return []
    end = max(s.end for s in all_spans)
    shares: dict[str, float] = {}
    for worker, mine in by_worker.items():
        first = min(s.start for s in mine)
        busy = _covered(mine)
        shares[worker] = busy / (end - first) if end > first else 1.0
    low = min(shares, key=shares.__getitem__)
    return [
        ("workers", len(shares)),
        ("busy", f"{100 * statistics.fmean(shares.values()):.0f}% of the time on average"),
        ("least busy", f"{low}: {100 * shares[low]:.0f}%"),
    ]


def _covered(mine: list[Span]) -> float:
    """Seconds in which the worker ran at least one trial (overlaps counted once)."""
    busy = 0.0
    cursor = -1.0
    for s in sorted(mine, key=lambda s: s.start):
        start = max(s.start, cursor)
        if s.end > start:
            busy += s.end - start
            cursor = s.end
    return busy


def _stragglers(all_spans: list[Span]) -> list[Html]:
    done = [s for s in all_spans if s.trial.state.is_finished()]
    if len(done) < 5:
        return []
    median = statistics.median(s.seconds for s in done)
    if median <= 0:  # trials of no measurable time: none is slower than the rest
        return []
    slow = sorted(
        (s for s in all_spans if s.seconds > STRAGGLER_FACTOR * median and s.outcome != ORPHANED),
        key=lambda s: -s.seconds,
    )
    if not slow:
        return [note(f"No straggler: no trial took more than {STRAGGLER_FACTOR:g} x the median.")]
    rows = [
        [s.trial.number, s.outcome, fmt.seconds(s.seconds), f"{s.seconds / median:.1f}", s.worker]
        for s in slow[:STRAGGLERS_LISTED]
    ]
    head = (
        f"{len(slow)} straggler{'s' if len(slow) > 1 else ''} took more than"
        f" {STRAGGLER_FACTOR:g} x the median trial time "
        f"({fmt.seconds(median)}); the longest:"
    )
    return [
        note(head),
        table(["trial", "outcome", "time", "x median", "worker"], rows, numeric=[0, 3]),
    ]
