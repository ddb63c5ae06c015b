"""Sections drawn by optuna.visualization: optimization history, Pareto front, parallel
coordinates, parameter importances, slice and contour plots.

Optuna draws these well; what is ours is the sampling that keeps them small at 10,000
trials (each cap below says why), and the choice of parameters for the slice and contour
plots: the most important ones, in the order the importance plot found.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from supervisor.report import fmt, ranges
from supervisor.report.campaign import spread
from supervisor.report.page import Html, Page, note

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign

PARALLEL_TRIALS = 1000  # Optuna draws one plotly trace per line: slow beyond ~1,000
PARETO_PLOT_TRIALS = 2000  # points of the Pareto front plot, each with a hover text
SLICE_TRIALS = 1000  # points per parameter, each an SVG marker with a ~300-byte hover text
SLICE_PARAMS = 8
# Optuna's contour grid has a row and a column per distinct value, and plotly.js fills the
# empty cells by interpolation in the browser: at 1,000 float-valued trials a panel took a
# minute to draw, at 150 a few seconds for all pairs.
CONTOUR_TRIALS = 150
CONTOUR_PARAMS = 3  # 3 pairs in a 3 x 3 matrix; more makes each panel unreadably small
FANOVA_TRIALS = 100  # fANOVA: ~1 s at 100 trials, ~30 s at 1,000; it grows faster than n

NO_COMPLETE = "No complete trial yet: nothing to plot."
OUTLIERS_LISTED = 5


def _plotted(camp: Campaign, cap: int | None = None) -> tuple[optuna.Study, list[Html]]:
    """The view a figure draws, and notes saying what it leaves out: the trials whose
    values are far beyond the others' (``Campaign.outliers``), and beyond ``cap`` trials
    all but an even sample."""
    ranked, notes = camp.ranked, _outlier_notes(camp, "Not drawn")
    if camp.outliers:
        ranked = [t for t in ranked if t.number not in camp.outliers]
    if cap is not None and len(ranked) > cap:
        ranked = spread(ranked, cap)
        notes.append(note(_sampled(cap, camp)))
    if len(ranked) == len(camp.ranked):
        return camp.view, notes
    return camp.view_of({t.number for t in ranked}), notes


def _outlier_notes(camp: Campaign, what: str) -> list[Html]:
    if not camp.outliers:
        return []
    listed = [f"#{n} ({text})" for n, text in list(camp.outliers.items())[:OUTLIERS_LISTED]]
    more = len(camp.outliers) - len(listed)
    return [
        note(
            f"{what} (their values are far beyond the others'; the tables list them):"
            f" trial {', '.join(listed)}{f' and {more} more' if more > 0 else ''}."
        )
    ]


def history(camp: Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(NO_COMPLETE)]
    from optuna.visualization import plot_optimization_history

    # Optuna's history takes every trial (it indexes them by number): the far outliers
    # stay, above or below the y-axis's range.
    out = _outlier_notes(camp, "Beyond the y-axis")
    for i, name in enumerate(camp.names):

        def build(i: int = i, name: str = name) -> Any:
            if camp.multi:
                fig = plot_optimization_history(
                    camp.view, target=lambda t: t.values[i], target_name=name
                )
                fig.update_layout(title=f"Optimization history: {name}")
            else:
                fig = plot_optimization_history(camp.view, target_name=name)
            values = [t.values[i] for t in camp.ranked]
            bounds = ranges.fence(values)
            if bounds is None:
                return fig
            return ranges.clip_drawn(fig, ranges.axis_range(values, bounds))

        what = f"optimization history of {name}" if camp.multi else "optimization history"
        out.append(page.draw(what, build))
    return out


def pareto(camp: Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(NO_COMPLETE)]
    if len(camp.names) > 3:
        return [note(f"A Pareto front plot shows 2 or 3 objectives, not {len(camp.names)}.")]
    from optuna.visualization import plot_pareto_front

    text = f"{len(camp.pareto)} Pareto-optimal trials (listed in the summary)"
    view, notes = _plotted(camp)
    drawn = [t for t in camp.ranked if t.number not in camp.outliers]
    if len(drawn) > PARETO_PLOT_TRIALS:
        # Every hover text is a few hundred bytes: draw the front and a sample of the rest.
        optimal = {t.number for t in camp.pareto if t.number not in camp.outliers}
        others = [t for t in drawn if t.number not in optimal]
        some = spread(others, max(PARETO_PLOT_TRIALS - len(optimal), 0))
        view = camp.view_of(optimal | {t.number for t in some})
        text += f"; {len(some)} of the {len(others)} dominated trials are drawn"
    build = functools.partial(plot_pareto_front, view, target_names=camp.names)
    return [note(text + "."), *notes, page.draw("Pareto front", build, 550)]


def parallel(camp: Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(NO_COMPLETE)]
    if not any(t.params for t in camp.ranked):
        return [note("The trials have no parameters.")]
    from optuna.visualization import plot_parallel_coordinate

    view, out = _plotted(camp, PARALLEL_TRIALS)
    if camp.multi:  # Optuna draws every objective as an axis, coloured by Pareto rank
        build = functools.partial(plot_parallel_coordinate, view)
    else:
        build = functools.partial(plot_parallel_coordinate, view, target_name=camp.names[0])
    out.append(page.draw("parallel coordinates", build, 500))
    return out


def _sampled(n: int, camp: Campaign) -> str:
    return (
        f"{n} of {len(camp.ranked)} complete trials, evenly spaced from the best to the "
        f"worst by {camp.names[0]}."
    )


def importances(camp: Campaign, page: Page) -> list[Html]:
    """Importance plots; leaves the parameters, most important first, in camp.param_order."""
    if len(camp.ranked) < 2:
        return [note("Parameter importances need at least 2 complete trials.")]
    if not varied_params(camp.ranked):
        return [note("No parameter varies across the complete trials.")]
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
    from optuna.visualization import plot_param_importances

    evaluator: FanovaImportanceEvaluator | PedAnovaImportanceEvaluator
    if len(camp.ranked) <= FANOVA_TRIALS:
        # Seeded: the same study gives the same figure every time the report is regenerated.
        evaluator = FanovaImportanceEvaluator(seed=0)
        text = "fANOVA: the share of the variance of the objective explained by each parameter"
    else:  # fANOVA takes minutes on thousands of trials; PED-ANOVA a fraction of a second
        evaluator = PedAnovaImportanceEvaluator()
        text = (
            "PED-ANOVA (Optuna's default): how much each parameter matters for reaching "
            "the best 10% of the trials"
        )
    out = [note(f"{text}, from {len(camp.ranked)} complete trials.")]
    everywhere = set.intersection(*(set(t.params) for t in camp.ranked))
    partial = [p for p in varied_params(camp.ranked) if p not in everywhere]
    if partial:  # Optuna rates only the parameters that every trial has
        out.append(note(f"Not rated, set in some trials only: {', '.join(partial)}."))
    for i, (name, direction) in enumerate(zip(camp.names, camp.directions, strict=True)):
        same = {trial.values[i] for trial in camp.ranked}
        if len(same) == 1:
            # fANOVA fails on it ("zero total variance") and PED-ANOVA draws equal bars.
            value = fmt.number(same.pop())
            n = len(camp.ranked)
            out.append(note(f"All {n} complete trials have {name} {value}: nothing to explain."))
            continue
        # With a target PED-ANOVA takes low values as good; fANOVA does not mind the sign.
        sign = -1.0 if direction == "maximize" else 1.0

        def build(i: int = i, sign: float = sign, name: str = name) -> Any:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator computes")
                if camp.multi:
                    fig = plot_param_importances(
                        camp.view,
                        evaluator=evaluator,
                        target=lambda t: sign * t.values[i],
                        target_name=name,
                    )
                    fig.update_layout(title=f"Parameter importances for {name}")
                else:
                    fig = plot_param_importances(camp.view, evaluator=evaluator)
            if i == 0 and fig.data:  # bars run from the least to the most important
                camp.param_order = [str(p) for p in reversed(fig.data[0].y)]
            return fig

        what = f"parameter importances for {name}" if camp.multi else "parameter importances"
        out.append(page.draw(what, build))
    return out


def varied_params(trials: Sequence[FrozenTrial]) -> list[str]:
    first: dict[str, Any] = {}
    varied: set[str] = set()
    for trial in trials:
        for name, value in trial.params.items():
            if name not in first:
                first[name] = value
            elif name not in varied and value != first[name]:
                varied.add(name)
    return sorted(varied)


def _params_by_importance(camp: Campaign, n: int) -> list[str]:
    varied = varied_params(camp.ranked)
    ordered = [p for p in camp.param_order if p in varied]
    return (ordered + [p for p in varied if p not in ordered])[:n]


def _target(camp: Campaign) -> dict[str, Any]:
    """The first objective, named; Optuna needs a target for multi-objective studies."""
    if camp.multi:
        return {"target": lambda t: t.values[0], "target_name": camp.names[0]}
    return {"target_name": camp.names[0]}


def slices(camp: Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(NO_COMPLETE)]
    params = _params_by_importance(camp, SLICE_PARAMS)
    if not params:
        return [note("No parameter varies across the complete trials.")]
    from optuna.visualization import plot_slice

    view, notes = _plotted(camp, SLICE_TRIALS)
    out = [note(f"{camp.names[0]} against each parameter; colour: trial number."), *notes]
    varied = len(varied_params(camp.ranked))
    if varied > len(params):
        out.append(note(f"The {len(params)} most important of {varied} parameters."))
    build = functools.partial(plot_slice, view, params=params, **_target(camp))
    return [*out, page.draw("slice plot", build, 420)]


def contours(camp: Campaign, page: Page) -> list[Html]:
    if len(camp.ranked) < 2:
        return [note("Contour plots need at least 2 complete trials.")]
    params = _params_by_importance(camp, CONTOUR_PARAMS)
    if len(params) < 2:
        return [note("Contour plots need two parameters that vary.")]
    from optuna.visualization import plot_contour

    names = ", ".join(params)
    view, notes = _plotted(camp, CONTOUR_TRIALS)
    out = [note(f"{camp.names[0]} over pairs of the most important parameters: {names}."), *notes]
    build = functools.partial(plot_contour, view, params=params, **_target(camp))
    return [*out, page.draw("contour plot", build, 420 if len(params) == 2 else 760)]
