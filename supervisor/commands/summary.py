"""Text shown at the end of a campaign and by ``validate`` / ``search --dry-run``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.execution.node import NodeSettings

if TYPE_CHECKING:
    from supervisor.config.space import Experiment
    from supervisor.study.driver import Summary


def describe_experiment(exp: Experiment, opts: Any) -> str:
    import supervisor.rundir as rundir

    run_dir: Path = opts.runs_root / exp.study_name
    storage = opts.storage or rundir.journal_url(run_dir)
    journal = run_dir / rundir.JOURNAL_FILE
    resume = " (exists: the search resumes)" if opts.storage is None and journal.exists() else ""
    lines = [
        f"{exp.file}: valid",
        f"study       {exp.study_name}",
        f"benchmark   {exp.benchmark}  ({exp.benchmark_target})",
    ]
    lines += [f"  option    {k} = {v!r}" for k, v in exp.options.items()]
    lines.append("objectives  " + ", ".join(f"{o.metric} ({o.direction})" for o in exp.objectives))
    lines.append(f"params      {len(exp.params)} searched")
    width = max((len(p.name) for p in exp.params), default=0)
    lines += [f"  {p.name:<{width}}  {p.describe()}" for p in exp.params]
    if exp.fixed:
        lines.append("fixed       " + ", ".join(f"{k}={v!r}" for k, v in exp.fixed.items()))
    options = f" {exp.sampler_options}" if exp.sampler_options else ""
    lines.append(f"sampler     {exp.sampler}{options}, seed {exp.seed}")
    timeout = f", timeout {exp.budget.timeout:g} s" if exp.budget.timeout else ""
    lines.append(f"budget      {exp.budget.trials} trials x {exp.budget.epochs} epochs{timeout}")
    lines.append(f"storage     {storage}{resume}")
    if opts.scheduler:
        where = f"scheduler {opts.scheduler}"
    elif opts.launcher:
        where = f"the cluster of launcher {opts.launcher}"
    else:
        where = "a local Dask cluster"
    if exp.node.to_dict() != NodeSettings().to_dict():
        lines.append(f"node        xla {exp.node.xla}, precision {exp.node.precision}")
    lines.append(f"would run   {exp.budget.trials} trials on {where}")
    if exp.ensemble is not None:
        e = exp.ensemble
        pool = f", pool {e.pool}" if e.select in ("greedy", "auto") else ""
        lines.append(f"then        an ensemble: select {e.select}, size {e.size}{pool}")
    return "\n".join(lines)


def print_summary(summary: Summary, report: Path | None) -> None:
    why = {
        "budget": "budget reached",
        "timeout": "timeout reached",
        "interrupt": "interrupted by the user",
    }[summary.stopped_by]
    print(f"\nStopped: {why} after {summary.elapsed:.1f} s")
    print(f"Finished trials: {summary.finished} of {summary.requested} requested")
    for outcome, count in sorted(summary.states.items()):
        print(f"  this run: {count} {outcome}")
    if summary.recovered.zombies:
        print(f"  closed {len(summary.recovered.zombies)} trial(s) left by a dead driver")
    if report is not None:
        print(f"Report: {report}")
    if summary.stopped_by != "budget":
        print("Run the same command again to continue the search.")
