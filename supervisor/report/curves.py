"""Learning curves from the per-epoch ``history`` the driver stores with every trial.

One figure per objective that the histories contain (multi-objective studies have no
Optuna intermediate values, the histories have every metric). All curves of one state go
into one trace, separated by gaps, so the page stays light at thousands of trials; the
best complete trials get a trace each, coloured and named. A plain Optuna study without
histories falls back to its intermediate values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from supervisor.report import fmt, ranges
from supervisor.report.campaign import spread
from supervisor.report.page import Html, Page, note

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign

BACKGROUND_TRIALS = 2000  # grey curves per state; evenly spaced over the trial numbers
# Points of the grey curves of one state: long trainings (300 epochs, 2,000 curves) made
# 8 MB per figure, one figure per objective; a longer curve is drawn at fewer epochs.
BACKGROUND_POINTS = 200_000
HIGHLIGHTED = 10  # best complete trials drawn in colour
METRICS = 3  # figures at most
_STATE_STYLE = {
    "COMPLETE": ("rgba(90, 100, 110, 0.25)", "complete"),
    "PRUNED": ("rgba(230, 140, 30, 0.45)", "pruned"),
    "RUNNING": ("rgba(30, 110, 220, 0.6)", "running"),
}

Curve = tuple[list[float], list[float]]


def curves(camp: Campaign, page: Page) -> list[Html]:
    drawable = [t for t in camp.trials if t.state.name in _STATE_STYLE]
    per_trial = {t.number: fmt.history(camp.record(t)) for t in drawable}
    with_history = [t for t in drawable if per_trial[t.number]]
    if with_history:
        metrics = _metrics(camp, [per_trial[t.number] for t in with_history])
        # The best with a history, in colour: trials told their results (warm start,
        # twins) have none, and the note said "the 10 best" where some of those were.
        ranked = [bool(per_trial.get(t.number)) for t in camp.feasible]
        drawn = [i for i, has in enumerate(ranked) if has][:HIGHLIGHTED]
        skipped = ranked[: drawn[-1] + 1].count(False) if drawn else 0
        out = [
            note(
                f"{len(with_history)} trials with a per-epoch history; grey: complete, "
                f"orange: pruned, blue: running; in colour, the {len(drawn)} best complete"
                f" trials{' that keep the constraints' * camp.constrained} among them"
                + (f" ({skipped} better ones, told their results, have none)." if skipped else ".")
            )
        ]
        for metric in metrics:
            by_trial = {t.number: from_history(per_trial[t.number], metric) for t in with_history}
            y_range, notes = y_range_of(by_trial, metric)
            out += [*notes, _figure(camp, page, with_history, by_trial, metric, y_range)]
        return out
    with_values = [t for t in drawable if t.intermediate_values]
    if not with_values:
        return [note("No trial reported per-epoch metrics.")]
    by_trial = {
        t.number: (
            [float(s) for s in sorted(t.intermediate_values)],
            [t.intermediate_values[s] for s in sorted(t.intermediate_values)],
        )
        for t in with_values
    }
    y_range, notes = y_range_of(by_trial, camp.names[0])
    return [
        note("Intermediate values reported to Optuna, per step."),
        *notes,
        _figure(camp, page, with_values, by_trial, camp.names[0], y_range, x_title="step"),
    ]


def _metrics(camp: Campaign, histories: Sequence[Sequence[Mapping[str, Any]]]) -> list[str]:
    """The objectives that the histories hold; else the first metrics they hold."""
    seen: dict[str, None] = {}
    for entries in histories[:50]:
        for entry in entries:
            seen.update((k, None) for k in entry if k != "epoch")
    objectives = [name for name in camp.names if name in seen]
    return (objectives or list(seen))[:METRICS]


def from_history(entries: Sequence[Mapping[str, Any]], metric: str) -> Curve:
    xs: list[float] = []
    ys: list[float] = []
    for i, entry in enumerate(entries):
        value = entry.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            epoch = entry.get("epoch", i)
            xs.append(float(epoch) if fmt.is_number(epoch) else float(i))
            ys.append(float(value))  # inf and nan too: a note counts them, the plot skips them
    return xs, ys


def y_range_of(
    by_trial: Mapping[int, Curve], metric: str
) -> tuple[list[float] | None, list[Html]]:
    """A y-axis range for the ordinary curves, where some go far beyond them (a diverged
    training: a loss of 1e37 made every other curve a flat line at the bottom), and the
    notes that say which trials leave it or have inf or nan values."""
    notes = []
    odd = [n for n, (_, y) in by_trial.items() if not all(map(math.isfinite, y))]
    if odd:
        notes.append(note(f"T{_trials(odd)[1:]} reported inf or nan {metric}: not drawn there."))
    extremes: list[float] = []
    for _, y in by_trial.values():
        finite = [v for v in y if math.isfinite(v)]
        extremes += [min(finite), max(finite)] if finite else []
    bounds = ranges.fence(extremes)
    if bounds is None:
        return None, notes
    low, high = bounds
    far = {  # each trial beyond the bounds, with its value farthest from them
        n: max((v for v in y if math.isfinite(v) and not low <= v <= high), key=abs)
        for n, (_, y) in by_trial.items()
        if any(math.isfinite(v) and not low <= v <= high for v in y)
    }
    y_range = ranges.axis_range((v for _, y in by_trial.values() for v in y), bounds)
    worst = max(far.values(), key=abs)
    notes.append(
        note(
            f"The y-axis leaves out the {metric} values far beyond those of the other trials"
            f" (up to {ranges.short(worst)}), of {_trials(sorted(far))}; double-click the"
            " figure to see all."
        )
    )
    return y_range, notes


def _trials(numbers: Sequence[int], shown: int = 10) -> str:
    listed = ", ".join(f"#{n}" for n in numbers[:shown])
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return f"trial{'s' if len(numbers) > 1 else ''} {listed}{more}"


def _figure(
    camp: Campaign,
    page: Page,
    trials: list[FrozenTrial],
    by_trial: dict[int, Curve],
    metric: str,
    y_range: list[float] | None,
    x_title: str = "epoch",
) -> Html:
    def build() -> Any:
        import numpy as np
        import plotly.graph_objects as go

        fig = go.Figure()
        for state, (colour, label) in _STATE_STYLE.items():
            of_state = [t for t in trials if t.state.name == state and by_trial[t.number][0]]
            shown = spread(of_state, BACKGROUND_TRIALS)
            if not shown:
                continue
            # One trace, curves separated by NaN: plotly leaves a gap there.
            xs: list[float] = []
            ys: list[float] = []
            each = max(10, BACKGROUND_POINTS // len(shown))
            for t in shown:
                x, y = _thin(*by_trial[t.number], each)
                xs += [*x, float("nan")]
                ys += [*y, float("nan")]
            name = (
                f"{label} ({len(shown)} of {len(of_state)})"
                if len(shown) < len(of_state)
                else label
            )
            fig.add_trace(
                go.Scatter(
                    x=np.array(xs, dtype=np.float32),  # a plot needs no more precision
                    y=drawable(ys).astype(np.float32),
                    mode="lines",
                    line={"color": colour, "width": 1},
                    name=name,
                    hoverinfo="skip",
                )
            )
        numbers = {t.number for t in trials}
        best = [t for t in camp.feasible if t.number in numbers and by_trial[t.number][0]]
        for t in best[:HIGHLIGHTED]:
            x, y = by_trial[t.number]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=drawable(y),
                    mode="lines+markers",
                    name=f"trial #{t.number}",
                    line={"width": 2},
                    marker={"size": 4},
                    hovertemplate=(
                        f"trial #{t.number}<br>{x_title} %{{x}}<br>%{{y:.4g}}<extra></extra>"
                    ),
                )
            )
        fig.update_layout(
            title=f"Learning curves: {metric}",
            xaxis_title=x_title,
            yaxis_title=metric,
            legend={"itemclick": "toggle"},
        )
        return fig if y_range is None else ranges.clip_drawn(fig, y_range)

    return page.draw(f"learning curves of {metric}", build, 480)


def drawable(ys: list[float]) -> Any:
    """The values as a plot takes them: inf and nan are gaps (no point), and no value
    overflows single precision."""
    import numpy as np

    y = np.array(ys, dtype=np.float64)
    y[~np.isfinite(y)] = np.nan
    limit = float(np.finfo(np.float32).max)
    return np.clip(y, -limit, limit)


def _thin(x: list[float], y: list[float], n: int) -> Curve:
    """At most ``n`` points of a curve, evenly spaced, the first and the last kept."""
    if len(x) <= n:
        return x, y
    step = (len(x) - 1) / (n - 1)
    keep = sorted({round(i * step) for i in range(n)})
    return [x[i] for i in keep], [y[i] for i in keep]
