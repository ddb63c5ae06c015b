"""The report's provenance section: where trials ran (node, batch job, CPU, devices, the
cores and GPUs they held), with what seeds and node settings; the hardware of the whole
campaign once, then one row per trial for the best trials and the latest failures, which
are the ones rerun or questioned. ``supervisor export`` has every trial's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.report import fmt
from supervisor.report.page import Html, Page, note, table

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign
    from supervisor.study.records import Provenance

BEST_ROWS = 20
FAILED_ROWS = 20
HARDWARE_ROWS = 30


def section(camp: Campaign, page: Page) -> list[Html]:
    known = [(t, p) for t in camp.trials if (p := camp.record(t).provenance) is not None]
    if not known:
        return [note("No trial recorded where it ran (studies before provenance was kept).")]
    out = [note(f"{len(known)} of {len(camp.trials)} trials recorded where they ran.")]
    hardware = Counter((p.node or "", p.cpu or "", p.devices or "") for _, p in known)
    rows = [[n, c, d, k] for (n, c, d), k in hardware.most_common(HARDWARE_ROWS)]
    if len(hardware) > HARDWARE_ROWS:
        rows.append(["…", f"{len(hardware) - HARDWARE_ROWS} more", "", ""])
    out.append(table(["node", "CPU", "devices", "trials"], rows, numeric=[3]))
    shown: dict[int, FrozenTrial] = {t.number: t for t in camp.feasible[:BEST_ROWS]}
    failed = sorted(camp.failed, key=lambda t: -t.number)[:FAILED_ROWS]
    shown.update({t.number: t for t in failed})
    listed = [(t, p) for t in shown.values() if (p := camp.record(t).provenance) is not None]
    if listed:  # the trials of this campaign among those shown (not the warm-start ones)
        best = sum(t.number not in {f.number for f in failed} for t, _ in listed)
        failures = len(listed) - best
        what = f"the {best} best trial{'s' if best != 1 else ''}"
        if failures:
            what += f" and the {failures} latest failure{'s' if failures != 1 else ''}"
        out.append(
            note(
                f"Per trial, {what}: with its parameters and the run manifest's package "
                "versions, its seeds and node settings are what a rerun needs."
            )
        )
        out.append(trial_table(camp, listed))
    return out


def trial_table(camp: Campaign, listed: list[tuple[FrozenTrial, Provenance]]) -> Html:
    rows = [
        [
            t.number,
            fmt.outcome(camp.record(t)),
            p.node or "",
            p.job or "",
            p.cpu or "",
            p.devices or "",
            _held(p),
            fmt.number(p.seed),
            fmt.number(p.data_seed),
            settings_text(p.settings),
        ]
        for t, p in listed
    ]
    headers = [
        "trial",
        "outcome",
        "node",
        "batch job",
        "CPU",
        "devices",
        "held",
        "seed",
        "data seed",
        "node settings",
    ]
    return table(headers, rows, numeric=[0, 7, 8])


def _held(p: Provenance) -> str:
    parts = []
    if p.cores is not None:
        of = f" of {p.node_cores:g}" if p.node_cores else ""
        parts.append(f"{p.cores:g}{of} cores")
    if p.gpus:
        parts.append(f"{p.gpus:g} GPU")
    return ", ".join(parts)


def settings_text(settings: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(settings.items()))
