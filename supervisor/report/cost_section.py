"""The report's cost section: node-hours (core-hours, GPU-hours) per outcome, as a table
and a bar chart (``supervisor.report.cost`` computes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.report import cost, fmt
from supervisor.report.page import Html, Page, note, table

if TYPE_CHECKING:
    from supervisor.report.campaign import Campaign

COLOURS = {
    cost.COMPLETE: "#2da44e",
    cost.PRUNED: "#d4a72c",
    cost.FAILED: "#cf222e",
    cost.WASTED: "#8250df",
    cost.RUNNING: "#0969da",
    cost.IDLE: "#afb8c1",
}


def section(camp: Campaign, page: Page) -> list[Html]:
    found = cost.campaign_cost(map(camp.record, camp.trials), camp.now, camp.orphans)
    if not found.usage:
        return [note("No trial has used a worker yet.")]
    unit = found.unit
    gpus = found.total("gpu") > 0
    grand = found.total(unit) or 1.0
    headers = ["outcome", "trials", "worker time", "core-hours"]
    headers += ["node-hours"] if found.node_known else []
    headers += ["GPU-hours"] if gpus else []
    headers.append("share")
    rows: list[list[object]] = []
    for name, usage in [*found.usage.items(), ("total", _total(found))]:
        row: list[object] = [
            name,
            usage.trials or "",
            fmt.seconds(usage.seconds),
            f"{usage.core_seconds / 3600:,.3f}",
        ]
        if found.node_known:
            row.append(f"{usage.node_seconds / 3600:,.3f}")
        if gpus:
            row.append(f"{usage.gpu_seconds / 3600:,.3f}")
        row.append(f"{100 * getattr(usage, f'{unit}_seconds') / grand:.1f}%")
        rows.append(row)
    shares = [float(getattr(u, f"{unit}_seconds")) / 3600 for u in found.usage.values()]
    names = list(found.usage)

    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Bar(
                x=shares,
                y=names,
                orientation="h",
                marker={"color": [COLOURS.get(n, "#57606a") for n in names]},
                hovertemplate=f"%{{y}}: %{{x:.3f}} {unit}-hours<extra></extra>",
            )
        )
        return fig.update_layout(
            title=f"{unit.capitalize()}-hours per outcome",
            xaxis_title=f"{unit}-hours",
            yaxis={"autorange": "reversed", "automargin": True},
            showlegend=False,
        )

    return [
        note(_method(found)),
        table(headers, rows, numeric=range(1, len(headers))),
        page.draw("cost", build, 120 + 40 * len(names)),
    ]


def _total(found: cost.Cost) -> cost.Usage:
    total = cost.Usage()
    for name, usage in found.usage.items():
        if name != cost.IDLE:
            total.trials += usage.trials
        total.seconds += usage.seconds
        total.core_seconds += usage.core_seconds
        total.node_seconds += usage.node_seconds
        total.gpu_seconds += usage.gpu_seconds
    return total


def _method(found: cost.Cost) -> str:
    text = (
        "Each trial's time on its worker x the cores (and GPUs) it held, over the cores of "
        "its node (the launcher profile's cores per job, or the machine's). Wasted: trials "
        "whose worker died or that were interrupted (their parameters ran again). Idle: "
        "gaps between two trials of one worker; a worker's start-up and its idle time "
        "before retiring leave no trace in the study. Slurm accounting (sacct) is not "
        "consulted. Running trials count up to now."
    )
    if found.without_provenance:
        text += (
            f" {found.without_provenance} of {found.with_provenance + found.without_provenance}"
            " trials recorded no provenance: taken to hold what the others held."
        )
    if not found.node_known:
        text += " No trial recorded its node's size: core-hours only."
    return text
