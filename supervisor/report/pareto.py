"""The Pareto report of a multi-objective campaign: one self-contained HTML page.

Sections: the summary (objectives, size of the front, hypervolume and its reference
point, a link to the campaign report), the front in 2-D (each pair of objectives) and in
3-D over the cloud of dominated trials, the hypervolume history, the table of
Pareto-optimal configurations with their parameters and cost metrics, and their learning
curves. It is written next to the campaign report as ``<study>-pareto.html``, which the
campaign report links to.

Reused from Optuna: ``study.best_trials`` (the front, through ``Campaign.pareto``),
``plot_pareto_front`` (2-D and 3-D; it finds the front over all objectives whatever axes
it draws), ``plot_hypervolume_history``, and Optuna's ``compute_hypervolume`` for the
current hypervolume (private, but what Optuna's own plot uses; see
``supervisor.optuna_internals``). Ours: the
reference point, the choice of axes, the table and the page.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from supervisor.report import fmt, ranges
from supervisor.report.curves import Curve, drawable, from_history, y_range_of
from supervisor.report.page import Html, Page, esc, kv_table, note, table

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign

PAIRS = 3  # 2-D projections at most (all three pairs of three objectives)
TABLE_ROWS = 200
CURVES = 50  # Pareto-optimal trials drawn in the learning-curve figure
PLOT_TRIALS = 2000  # points in a front figure, each with a hover text
REFERENCE_MARGIN = 0.1  # the reference point lies this share of each range beyond the worst
# Exact hypervolumes take time exponential in the objectives: the most Pareto-optimal
# trials whose hypervolume is computed, by number of objectives (about 2 s at the cap;
# 5 objectives, 1,700 trials: 78 s, and the history, a hypervolume per trial, 133 s more).
HYPERVOLUME_POINTS = {4: 1500, 5: 200, 6: 60}
HISTORY_OBJECTIVES = 4  # the hypervolume history, up to this many objectives
# Measured for every trial by the worker (supervisor.config.space.COST_METRICS), in the order a
# third axis is chosen from when the study has two objectives.
COST_METRICS = ("node_seconds", "train_seconds", "latency_ms", "n_params", "peak_memory_mb")


def pareto_path(report: Path, study_name: str) -> Path:
    """Where the Pareto report of the campaign report ``report`` goes."""
    return report.parent / f"{study_name}-pareto.html"


def write_pareto_report(
    study: optuna.Study,
    path: Path,
    run_info: Mapping[str, Any] | None = None,
    *,
    campaign_report: Path | None = None,
) -> Path:
    """Write the Pareto report of the multi-objective ``study`` to ``path`` (atomically)."""
    import supervisor.atomic as atomic

    link = None
    if campaign_report is not None:
        link = quote(campaign_report.name) if campaign_report.parent == path.parent else None
        link = link or campaign_report.resolve().as_uri()
    text = render_pareto_report(study, run_info, campaign_link=link)
    atomic.write(path, text, mode=0o600, durable=True)  # private, as the campaign report
    return path


def render_pareto_report(
    study: optuna.Study,
    run_info: Mapping[str, Any] | None = None,
    *,
    campaign_link: str | None = None,
) -> str:
    from optuna.exceptions import ExperimentalWarning

    from supervisor.report.campaign import Campaign

    if len(study.directions) < 2:
        raise ValueError(f"study {study.study_name!r} has one objective: no Pareto front")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        camp = Campaign.load(study)
        page = Page(f"Pareto report: {camp.study_name}", camp.objectives_text)
        reference = reference_point(camp)
        page.section("summary", "Summary", _summary(camp, reference, run_info, campaign_link))
        if not camp.pareto:  # none yet, or none keeps the constraints (the summary says)
            return page.render()
        page.section("front", "Pareto front", _fronts(camp, page))
        page.section("hypervolume", "Hypervolume history", _hypervolume(camp, page, reference))
        page.section("table", "Pareto-optimal configurations", [pareto_table(camp)])
        page.section("curves", "Learning curves of the Pareto-optimal trials", _curves(camp, page))
        return page.render()


# -- numbers ------------------------------------------------------------------------------


def reference_point(camp: Campaign) -> list[float] | None:
    """The worst value of each objective over the complete trials, a margin beyond it.

    Hypervolumes are comparable between reports of one campaign only while this point
    stays put: it is printed with them.
    """
    if not camp.ranked:
        return None
    # Without the trials far beyond the others (a diverged 1e37): a point beyond them made
    # every hypervolume that value times the rest, flat however the front improved.
    ordinary = [t for t in camp.ranked if t.number not in camp.outliers] or camp.ranked
    point = []
    for i, direction in enumerate(camp.directions):
        values = [t.values[i] for t in ordinary]
        low, high = min(values), max(values)
        span = (high - low) or abs(high) or 1.0
        if direction == "minimize":
            point.append(high + REFERENCE_MARGIN * span)
        else:
            point.append(low - REFERENCE_MARGIN * span)
    return point


def hypervolume_too_costly(camp: Campaign) -> str | None:
    """Why the front's hypervolume is not computed (too many objectives and trials on the
    front for an exact one in seconds), or None."""
    n, front = len(camp.names), len(camp.pareto)
    cap = HYPERVOLUME_POINTS.get(n, 0) if n > 3 else None
    if cap is None or front <= cap:
        return None
    return (
        f"exact hypervolumes take time exponential in the objectives, and {front} trials"
        f" are Pareto-optimal over {n} (computed up to {cap})"
    )


def hypervolume(camp: Campaign, reference: Sequence[float]) -> float:
    """Hypervolume of the front against ``reference``, all objectives turned to minimize."""
    import numpy as np

    from supervisor.optuna_internals import compute_hypervolume

    signs = np.array([1.0 if d == "minimize" else -1.0 for d in camp.directions])
    front = np.array([t.values for t in camp.pareto], dtype=float) * signs
    point = np.asarray(reference) * signs
    # A trial far beyond the others may be on the front and beyond the reference point:
    # it encloses no volume with it (as in Optuna's hypervolume history).
    return float(compute_hypervolume(front[(front <= point).all(axis=1)], point))


def _metrics(camp: Campaign, trial: FrozenTrial) -> Mapping[str, float]:
    return camp.record(trial).metrics


def _cost_columns(camp: Campaign) -> list[str]:
    """Cost metrics every Pareto-optimal trial has and that are not objectives."""
    have = [set(_metrics(camp, t)) for t in camp.pareto]
    return [m for m in COST_METRICS if m not in camp.names and have and all(m in h for h in have)]


# -- sections -----------------------------------------------------------------------------


def _summary(
    camp: Campaign,
    reference: list[float] | None,
    run_info: Mapping[str, Any] | None,
    campaign_link: str | None,
) -> list[Html]:
    out: list[Html] = []
    if campaign_link:
        out.append(
            Html(
                f'<p class="links">Campaign report: <a href="{esc(campaign_link)}">'
                f"{esc(camp.study_name)}</a></p>"
            )
        )
    rows: list[tuple[object, object]] = [
        ("study", camp.study_name),
        ("objectives", camp.objectives_text),
        ("trials", f"{len(camp.trials)} ({len(camp.ranked)} complete with finite values)"),
    ]
    if not camp.ranked:
        out.append(kv_table(rows))
        out.append(note("No complete trial yet: no front."))
        return out
    if camp.constrained:
        from supervisor.report.summary import constraints_text

        rows.append(("constraints", constraints_text(camp)))
    rows.append(("Pareto-optimal trials", str(len(camp.pareto))))
    if not camp.pareto:
        out.append(kv_table(rows))
        out.append(note("No complete trial keeps the constraints: no front."))
        return out
    if reference is not None:
        point = ", ".join(
            f"{n} {fmt.number(v)}" for n, v in zip(camp.names, reference, strict=True)
        )
        rows.append(("reference point", point))
        try:
            costly = hypervolume_too_costly(camp)
            value = (
                f"not computed: {costly}" if costly else fmt.number(hypervolume(camp, reference))
            )
            rows.append(("hypervolume", value))
        except Exception as exc:  # a private Optuna helper: costs one line, not the page
            rows.append(("hypervolume", f"not computed: {type(exc).__name__}: {exc}"))
    out.append(kv_table(rows))
    left_out = ""
    if camp.outliers:
        listed = ", ".join(f"#{n} ({text})" for n, text in list(camp.outliers.items())[:5])
        more = f" and {len(camp.outliers) - 5} more" if len(camp.outliers) > 5 else ""
        left_out = (
            f" (leaving out the trials far beyond the others, also left out of the figures:"
            f" {listed}{more})"
        )
    out.append(
        note(
            "The reference point is the worst value of each objective over the complete "
            f"trials{left_out}, {REFERENCE_MARGIN:.0%} of its range further; hypervolumes"
            " compare between reports only while it stays the same."
        )
    )
    if run_info:
        out.append(Html("<h3>Run</h3>"))
        out.append(kv_table((k, fmt.info(k, v)) for k, v in run_info.items()))
    return out


def _plot_view(camp: Campaign) -> tuple[optuna.Study, str]:
    """The study to draw: every trial, or the front and an even sample of the rest."""
    from supervisor.report.campaign import spread

    # Not the trials far beyond the others: they squeezed the rest into a corner.
    drawn = [t for t in camp.ranked if t.number not in camp.outliers]
    if len(drawn) <= PLOT_TRIALS:
        view = (
            camp.view
            if len(drawn) == len(camp.ranked)
            else camp.view_of({t.number for t in drawn})
        )
        return view, ""
    optimal = {t.number for t in camp.pareto if t.number not in camp.outliers}
    others = [t for t in drawn if t.number not in optimal]
    some = spread(others, max(PLOT_TRIALS - len(optimal), 0))
    text = f" {len(some)} of the {len(others)} dominated trials are drawn."
    return camp.view_of(optimal | {t.number for t in some}), text


def _fronts(camp: Campaign, page: Page) -> list[Html]:
    from optuna.visualization import plot_pareto_front

    view, sampled = _plot_view(camp)
    n = len(camp.names)
    grey = "; grey: trials that break the constraints" if camp.constrained else ""
    out = [note(f"Red: Pareto-optimal; blue: dominated trials{grey}.{sampled}")]

    def draw(
        axes: Sequence[int], names: list[str], value: Callable[[FrozenTrial], list[float]]
    ) -> Html:
        build = functools.partial(plot_pareto_front, view, target_names=names, targets=value)
        return page.draw(
            f"Pareto front of {' / '.join(names)}", build, 550 if len(axes) > 2 else 450
        )

    def pair(i: int, j: int) -> Callable[[FrozenTrial], list[float]]:
        return lambda t: [t.values[i], t.values[j]]

    out.append(Html("<h3>2-D</h3>"))
    for i, j in list(itertools.combinations(range(n), 2))[:PAIRS]:
        out.append(draw((i, j), [camp.names[i], camp.names[j]], pair(i, j)))

    out.append(Html("<h3>3-D</h3>"))
    if n >= 3:
        names = camp.names[:3]
        out.append(draw((0, 1, 2), names, lambda t: list(t.values[:3])))
        return out
    metrics = {t.number: _metrics(camp, t) for t in camp.ranked}
    third = next(
        (m for m in COST_METRICS if m not in camp.names and all(m in v for v in metrics.values())),
        None,
    )
    if third is None:
        out.append(
            note("A 3-D view needs a third objective or a cost metric that every trial has.")
        )
        return out
    out.append(
        note(
            f"The front of {camp.names[0]} and {camp.names[1]}, with {third} (not an "
            "objective, measured for every trial) as depth."
        )
    )
    out.append(
        draw(
            (0, 1, 2),
            [*camp.names, third],
            lambda t: [t.values[0], t.values[1], metrics.get(t.number, {}).get(third, math.nan)],
        )
    )
    return out


def _hypervolume(camp: Campaign, page: Page, reference: list[float] | None) -> list[Html]:
    if reference is None:
        return [note("No complete trial yet.")]
    if len(camp.names) > HISTORY_OBJECTIVES:
        return [
            note(
                f"Drawn for up to {HISTORY_OBJECTIVES} objectives, not {len(camp.names)}: it"
                " takes a hypervolume per trial, each in time exponential in the objectives."
            )
        ]
    if costly := hypervolume_too_costly(camp):
        return [note(f"Not drawn: {costly}.")]
    from optuna.visualization import plot_hypervolume_history

    build = functools.partial(plot_hypervolume_history, camp.view, reference)
    text = "Hypervolume of the front found up to each trial, against the reference point above."
    return [note(text), page.draw("hypervolume history", build)]


def pareto_table(camp: Campaign) -> Html:
    """The Pareto-optimal trials: values, parameters, cost metrics, where they ran."""
    trials = camp.pareto[:TABLE_ROWS]
    params = sorted({k for t in trials for k in t.params})
    costs = _cost_columns(camp)
    n_obj = len(camp.names)
    rows = [
        [
            t.number,
            *(fmt.number(v) for v in t.values),
            *(fmt.number(t.params[k]) if k in t.params else "" for k in params),
            *(fmt.number(float(_metrics(camp, t)[m])) for m in costs),
            fmt.worker(camp.record(t)),
        ]
        for t in trials
    ]
    numeric = [
        0,
        *range(1, 1 + n_obj),
        *range(1 + n_obj + len(params), 1 + n_obj + len(params) + len(costs)),
    ]
    body = table(
        ["trial", *camp.names, *params, *costs, "worker"],
        rows,
        numeric=numeric,
        css_class="data pareto",
    )
    if len(camp.pareto) > TABLE_ROWS:
        return Html(
            note(f"The first {TABLE_ROWS} of {len(camp.pareto)}, by {camp.names[0]}.") + body
        )
    return body


def _curves(camp: Campaign, page: Page) -> list[Html]:
    trials = [t for t in camp.pareto if fmt.history(camp.record(t))][:CURVES]
    if not trials:
        return [note("The Pareto-optimal trials reported no per-epoch metrics.")]
    seen: dict[str, None] = {}
    for t in trials:
        for entry in fmt.history(camp.record(t)):
            seen.update((k, None) for k in entry if k != "epoch")
    metrics = [m for m in camp.names if m in seen] or list(seen)[:1]
    out = [
        note(f"One line per Pareto-optimal trial ({len(trials)}); click the legend to hide one.")
    ]
    for metric in metrics:
        # As the campaign report's: epochs that are no number count by position, and a
        # curve far beyond the others (a spike to 1e37) leaves the y-axis to the others.
        by_trial = {t.number: from_history(fmt.history(camp.record(t)), metric) for t in trials}
        y_range, notes = y_range_of(by_trial, metric)

        def build(
            by_trial: dict[int, Curve] = by_trial,
            metric: str = metric,
            y_range: list[float] | None = y_range,
        ) -> Any:
            import plotly.graph_objects as go

            fig = go.Figure()
            for number, (x, y) in by_trial.items():
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=drawable(y),
                        mode="lines+markers",
                        name=f"trial #{number}",
                        marker={"size": 4},
                    )
                )
            fig.update_layout(
                title=f"Learning curves: {metric}", xaxis_title="epoch", yaxis_title=metric
            )
            return fig if y_range is None else ranges.clip_drawn(fig, y_range)

        out += [*notes, page.draw(f"learning curves of {metric}", build, 480)]
    return out
