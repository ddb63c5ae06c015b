"""``supervisor status``: a terminal table read from storage, safe beside a running search."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from supervisor import attrs

if TYPE_CHECKING:
    import optuna


def print_status(study: optuna.Study) -> None:
    from optuna.trial import TrialState
    from rich.console import Console
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    failures = Counter(
        str(t.user_attrs.get(attrs.FAILURE, "model")) for t in trials if t.state == TrialState.FAIL
    )
    config = study.user_attrs.get(attrs.CONFIG) or {}
    requested = (config.get("budget") or {}).get("trials")
    done = sum(1 for t in trials if attrs.counts_toward_budget(t))
    console = Console()
    console.print(f"[bold]{study.study_name}[/bold]  finished {done} of {requested or '?'}")
    table = Table("state", "trials")
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"):
        table.add_row(state, str(states.get(state, 0)))
    for kind, n in sorted(failures.items()):
        table.add_row(f"  FAIL ({kind})", str(n))
    console.print(table)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete and len(study.directions) == 1:
        best = study.best_trial
        console.print(f"best: trial {best.number}  value {best.value:.6g}  params {best.params}")
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running:
        now = time.time()
        rt = Table("running trial", "since (s)", "driver")
        for t in running[:50]:
            since = now - t.datetime_start.timestamp() if t.datetime_start else 0.0
            rt.add_row(str(t.number), f"{since:.0f}", str(t.user_attrs.get(attrs.DRIVER, "")))
        console.print(rt)
    durations = [t.user_attrs.get("duration_s") for t in complete]
    known = [d for d in durations if isinstance(d, int | float)]
    if requested and known and running:
        left = max(0, requested - done)
        eta = left * (sum(known) / len(known)) / max(1, len(running))
        console.print(f"ETA: about {eta:.0f} s for {left} trials at the current parallelism")
