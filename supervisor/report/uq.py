"""The UQ report: a campaign's deep ensemble against its best single member.

Sections: summary (members, how they were selected, the ensemble's metrics beside the
best member's), metric against ensemble size, then per kind: reliability diagrams and
the uncertainty of correct against wrong predictions (classifiers), coverage curves and
the variance split (regression), identity against per-base confidence (basecaller),
power-spectrum and intensity bands across members (GAN); member diversity last.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from supervisor.ensemble.aggregate import TARGETS
from supervisor.report.page import Html, Page, kv_table, note, table

if TYPE_CHECKING:
    from supervisor.ensemble.aggregate import Built

METRIC_TITLES = {
    "accuracy": "accuracy",
    "nll": "NLL",
    "brier": "Brier score",
    "ece": "ECE",
    "entropy": "mean predictive entropy",
    "mutual_information": "mean mutual information (epistemic)",
    "rmse": "RMSE",
    "coverage_90": "90% interval coverage",
    "aleatoric": "mean aleatoric variance",
    "epistemic": "mean epistemic variance",
    "identity": "read identity",
    "confidence": "mean per-base confidence",
    "confidence_identity_corr": "corr(confidence, identity)",
    "ps_error": "power-spectrum error",
    "hist_ks": "intensity KS distance",
    "score": "physics score",
}


def uq_path(reports_root: Path, study_name: str) -> Path:
    """``<study>-uq.html``: the name the campaign report links to."""
    return reports_root / f"{study_name}-uq.html"


def write_uq_report(built: Built, path: Path, study_name: str) -> Path:
    import supervisor.atomic as atomic

    # Private, as the campaign report.
    atomic.write(path, render_uq_report(built, study_name), mode=0o600, durable=True)
    return path


def render_uq_report(built: Built, study_name: str) -> str:
    ev = built.evaluation
    page = Page(f"Ensemble report: {study_name}", f"{ev.kind} ensemble of {len(built.members)}")
    page.section("summary", "Summary", _summary(built, study_name))
    page.section("size", "Metrics against ensemble size", [_by_size(built, page)])
    if ev.kind == "classification":
        page.section("calibration", "Reliability diagrams", [_reliability(built, page)])
        page.section(
            "uncertainty", "Uncertainty of correct and wrong predictions", _split(built, page)
        )
    elif ev.kind == "regression":
        page.section("coverage", "Interval coverage", [_coverage(built, page)])
        page.section("variance", "Aleatoric and epistemic variance", _variance(built, page))
    elif ev.kind == "sequence":
        page.section("confidence", "Per-base confidence", [_confidence(built, page)])
    elif ev.kind == "generative":
        page.section("bands", "Physics statistics across members", _bands(built, page))
    if built.finalists:
        page.section("finalists", "Finalists re-evaluated", [_finalists(built)])
    page.section("members", "Members", _members(built, page))
    return page.render()


# -- summary ------------------------------------------------------------------------------


def _summary(built: Built, study_name: str) -> list[Html]:
    ev = built.evaluation
    best_label = built.members[ev.best_member_index].label
    distinct = len({(m.study, m.trial) for m in built.members})
    items = [
        ("study", study_name),
        ("selection", f"{built.select} (size {built.config.size}, pool {built.config.pool})"),
        ("members", f"{len(built.members)} ({distinct} distinct models)"),
        ("reused from the search", built.reused),
        ("trained for the ensemble", built.trained),
        ("best single member", f"{best_label} (chosen on validation data)"),
    ]
    if built.failed:
        items.append(("left out", ", ".join(built.failed)))
    if built.excluded:
        why = "left out, breaking the constraints or predicting other inputs"  # each says which
        items.append((why, "; ".join(built.excluded)))
    rows = []
    for metric, value in ev.ensemble.items():
        single = ev.best_member.get(metric, math.nan)
        lower = ev.lower_is_better.get(metric)
        rows.append(
            [
                METRIC_TITLES.get(metric, metric),
                _num(value),
                _num(single),
                _verdict(value, single, lower, TARGETS.get(metric)),
            ]
        )
    out = [
        kv_table(items),
        Html("<h3>Test split: ensemble against the best single member</h3>"),
        table(["metric", "ensemble", "best member", ""], rows, numeric=(1, 2)),
    ]
    if ev.calibrated:
        ens, one = ev.calibrated["ensemble"], ev.calibrated["best member"]
        rows = [
            [METRIC_TITLES.get(k, k), _num(ens[k]), _num(one[k]), _verdict(ens[k], one[k], low)]
            for k, low in ev.lower_is_better.items()
        ]
        rows.append(["temperature T (fitted on validation)", _num(ens["T"]), _num(one["T"]), ""])
        out += [
            Html("<h3>After temperature scaling, fitted on the validation split</h3>"),
            table(["metric", "ensemble", "best member", ""], rows, numeric=(1, 2)),
        ]
    return out


def _verdict(
    ensemble: float, single: float, lower: bool | None, target: float | None = None
) -> str:
    """Which is better on a metric; with a ``target``, the one nearer to it."""
    if lower is None or not (math.isfinite(ensemble) and math.isfinite(single)):
        return ""
    if target is not None:
        ensemble, single = abs(ensemble - target), abs(single - target)
    if ensemble == single:
        return "same"
    return "ensemble better" if (ensemble < single) == lower else "member better"


def _num(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"


# -- figures --------------------------------------------------------------------------------


def _by_size(built: Built, page: Page) -> Html:
    def build() -> Any:
        from plotly.subplots import make_subplots

        rows = built.evaluation.by_size
        metrics = [m for m in rows[0] if m != "size" and m in built.evaluation.lower_is_better]
        fig = make_subplots(
            rows=1, cols=len(metrics), subplot_titles=[METRIC_TITLES.get(m, m) for m in metrics]
        )
        sizes = [r["size"] for r in rows]
        for i, metric in enumerate(metrics, start=1):
            fig.add_scatter(
                x=sizes,
                y=[r[metric] for r in rows],
                mode="lines+markers",
                name=metric,
                row=1,
                col=i,
            )
            fig.update_xaxes(title_text="members", dtick=1, row=1, col=i)
        fig.update_layout(showlegend=False)
        return fig

    return page.draw("metrics against ensemble size", build, height=360)


def _reliability(built: Built, page: Page) -> Html:
    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"dash": "dot", "color": "gray"},
        )
        for name, cal in built.evaluation.panels["reliability"].items():
            keep = np.asarray(cal.count) > 0
            fig.add_scatter(
                x=np.asarray(cal.confidence)[keep],
                y=np.asarray(cal.accuracy)[keep],
                mode="lines+markers",
                name=f"{name} (ECE {cal.ece:.3f})",
                customdata=np.asarray(cal.count)[keep],
                hovertemplate="confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} samples",
            )
        fig.update_xaxes(title_text="confidence (top-label probability)", range=[0, 1])
        fig.update_yaxes(title_text="accuracy", range=[0, 1])
        return fig

    return page.draw("reliability diagram", build)


def _split(built: Built, page: Page) -> list[Html]:
    panels = built.evaluation.panels
    correct = np.asarray(panels["correct"], bool)
    out = []
    for key, title in (
        ("entropy", "predictive entropy"),
        ("mutual_information", "mutual information (epistemic)"),
    ):
        values = np.asarray(panels[key], float)

        def build(values: np.ndarray = values, title: str = title) -> Any:
            import plotly.graph_objects as go

            fig = go.Figure()
            for mask, name in ((correct, "correct"), (~correct, "wrong")):
                if mask.any():
                    fig.add_histogram(
                        x=values[mask], name=name, histnorm="probability density", opacity=0.6
                    )
            fig.update_layout(barmode="overlay")
            fig.update_xaxes(title_text=f"{title} (nats)")
            return fig

        out.append(page.draw(f"{title} histogram", build, height=340))
    if not correct.all() and correct.any():
        means = [float(np.mean(panels["entropy"][m])) for m in (correct, ~correct)]
        out.append(
            note(
                f"Mean predictive entropy: {means[0]:.3f} on correct, "
                f"{means[1]:.3f} on wrong predictions."
            )
        )
    return out


def _coverage(built: Built, page: Page) -> Html:
    def build() -> Any:
        import plotly.graph_objects as go

        cov = built.evaluation.panels["coverage"]
        fig = go.Figure()
        fig.add_scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="ideal", line={"dash": "dot", "color": "gray"}
        )
        for name in ("ensemble", "best member"):
            fig.add_scatter(x=cov["levels"], y=cov[name], mode="lines+markers", name=name)
        fig.update_xaxes(title_text="nominal level of the central interval")
        fig.update_yaxes(title_text="observed coverage")
        return fig

    return page.draw("coverage curve", build)


def _variance(built: Built, page: Page) -> list[Html]:
    from supervisor.report.ranges import axis_range, fence, short

    p = built.evaluation.panels
    both = np.concatenate([np.ravel(p["aleatoric"]), np.ravel(p["epistemic"])]).astype(float)
    # A sample far out of distribution (members that disagree by 1e6 on it) made one bar
    # of every other sample: the bins span the ordinary ones, and a note counts the rest.
    bounds = fence(both.tolist())
    notes, bins = [], None
    if bounds is not None:
        low, high = axis_range(both.tolist(), bounds)
        bins = {"start": low, "end": high, "size": (high - low) / 60}
        far = both[np.isfinite(both) & ((both < bounds[0]) | (both > bounds[1]))]
        notes.append(
            note(
                f"{far.size} variances far beyond the others (up to"
                f" {short(float(np.max(np.abs(far))))}) are not drawn."
            )
        )

    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_histogram(x=p["aleatoric"], name="aleatoric", opacity=0.6, xbins=bins)
        fig.add_histogram(x=p["epistemic"], name="epistemic", opacity=0.6, xbins=bins)
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title_text="variance per test sample")
        return fig

    return [*notes, page.draw("variance split", build, height=360)]


def _confidence(built: Built, page: Page) -> Html:
    def build() -> Any:
        import plotly.graph_objects as go

        p = built.evaluation.panels
        fig = go.Figure()
        fig.add_scatter(
            x=p["confidence"],
            y=p["identity"],
            mode="markers",
            marker={"size": 4, "opacity": 0.5},
            name="reads",
        )
        fig.update_xaxes(title_text="mean per-base confidence of the ensemble's read")
        fig.update_yaxes(title_text="read identity")
        return fig

    return page.draw("identity against confidence", build)


def _bands(built: Built, page: Page) -> list[Html]:
    p = built.evaluation.panels

    def spectrum() -> Any:
        return _band_figure(
            p["k"], p["spectra"], p["ref_spectrum"], "k (cycles per map)", "P(k)", log=True
        )

    def histogram() -> Any:
        edges = np.asarray(p["hist_edges"], float)
        centres = (edges[:-1] + edges[1:]) / 2
        return _band_figure(
            centres,
            p["densities"],
            p["ref_density"],
            "pixel intensity (model space)",
            "fraction of pixels",
            log=False,
        )

    return [page.draw("power-spectrum band", spectrum), page.draw("intensity band", histogram)]


def _band_figure(
    x: Any, members: Any, reference: Any, x_title: str, y_title: str, *, log: bool
) -> Any:
    import plotly.graph_objects as go

    stack = np.asarray(members, float)
    low, high, mean = stack.min(axis=0), stack.max(axis=0), stack.mean(axis=0)
    fig = go.Figure()
    fig.add_scatter(
        x=x, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"
    )
    fig.add_scatter(
        x=x,
        y=low,
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        name="members (min to max)",
        fillcolor="rgba(9,105,218,0.2)",
    )
    fig.add_scatter(x=x, y=mean, mode="lines", name="ensemble (pooled)")
    fig.add_scatter(
        x=x,
        y=reference,
        mode="lines",
        name="held-out maps",
        line={"dash": "dash", "color": "black"},
    )
    fig.update_xaxes(title_text=x_title, type="log" if log else "linear")
    fig.update_yaxes(title_text=y_title, type="log" if log else "linear")
    return fig


def _finalists(built: Built) -> Html:
    """``candidates``: each of the best configurations of the search trained with every
    seed; the best mean is the ensemble (one seed's value flatters the luckiest)."""
    rows = []
    for i, f in enumerate(built.finalists):
        spread = f"{_num(min(f.values))} to {_num(max(f.values))}" if f.values else "-"
        rows.append(
            [
                f"search #{f.trial}",
                _num(f.search_value if f.search_value is not None else math.nan),
                _num(f.mean),
                spread,
                len(f.values),
                "the ensemble" if i == 0 else "",
            ]
        )
    return table(
        ["configuration", "in the search (1 seed)", "mean over seeds", "range", "seeds", ""],
        rows,
        numeric=(1, 2, 4),
    )


def _members(built: Built, page: Page) -> list[Html]:
    ev = built.evaluation
    metrics = list(ev.lower_is_better)
    counts: dict[tuple[str, int], int] = {}
    for m in built.members:
        counts[(m.study, m.trial)] = counts.get((m.study, m.trial), 0) + 1
    rows, seen = [], set()
    for i, m in enumerate(built.members):
        key = (m.study, m.trial)
        if key in seen:
            continue
        seen.add(key)
        scores = ev.members[i]
        rows.append(
            [
                m.label,
                counts[key],
                _num(m.value if m.value is not None else math.nan),
                *(_num(scores.get(k, math.nan)) for k in metrics),
            ]
        )
    out = [
        table(
            ["member", "weight", "search objective", *(METRIC_TITLES.get(k, k) for k in metrics)],
            rows,
            numeric=range(1, 3 + len(metrics)),
        )
    ]
    if "disagreement" in ev.panels and len(built.members) > 1:

        def build() -> Any:
            import plotly.graph_objects as go

            labels = [f"{i}: {m.label}" for i, m in enumerate(built.members)]
            return go.Figure(
                go.Heatmap(
                    z=ev.panels["disagreement"], x=labels, y=labels, colorscale="Blues", zmin=0
                )
            )

        out += [
            Html("<h3>Diversity: fraction of test samples on which two members disagree</h3>"),
            page.draw("disagreement matrix", build),
        ]
    return out
