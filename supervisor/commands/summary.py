"""Text shown at the end of a campaign and by ``validate`` / ``search --dry-run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

# CHAIN_ENV: set by the job script of ``supervisor submit`` (the chain resumes the search).
from supervisor.clusters.handover import CHAIN_ENV
from supervisor.execution.node import NodeSettings

if TYPE_CHECKING:
    from supervisor.commands.resume_plan import ResumePlan
    from supervisor.config.experiment import Experiment
    from supervisor.study.driver import Summary


def describe_experiment(exp: Experiment, opts: Any, resumed: ResumePlan | None = None) -> str:
    """``resumed``: what the study this search resumes holds (None: a new run)."""
    import supervisor.rundir as rundir
    from supervisor.commands.resume_plan import would_run

    run_dir: Path = opts.runs_root / exp.study_name
    storage = opts.storage or rundir.journal_url(run_dir)
    journal = run_dir / rundir.JOURNAL_FILE
    journal_there = opts.storage is None and journal.exists()
    resume = " (exists: the search resumes)" if journal_there or resumed else ""
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
    chosen = "" if "sampler" in exp.raw else " (the default for this space)"
    lines.append(f"sampler     {exp.sampler}{options}{chosen}, seed {exp.seed}")
    if exp.constraints:
        from supervisor.config.constraints import sampler_note

        note = sampler_note(exp.sampler, exp.constraints)
        kept = ", ".join(c.text() for c in exp.constraints)
        lines.append(f"constraints {kept}: only trials keeping them count as best")
        lines += [f"  note      {note}"] if note else []
    if exp.pruner != "none":
        judged = f" {exp.pruner_options}" if exp.pruner_options else ""
        lines.append(f"pruner      {exp.pruner}{judged}")
    timeout = f", timeout {exp.budget.timeout:g} s" if exp.budget.timeout else ""
    lines.append(f"budget      {exp.budget.trials} trials x {exp.budget.epochs} epochs{timeout}")
    sense = {o.metric: ">=" if o.direction == "maximize" else "<=" for o in exp.objectives}
    goals = [f"{metric} {sense[metric]} {value:g}" for metric, value in exp.budget.target]
    early = [f"a trial has {' and '.join(goals)}"] if goals else []
    if exp.budget.patience:
        early.append(f"{exp.budget.patience} finished trials in a row better no best value")
    if early:
        lines.append(f"stop early  once {' or '.join(early)}")
    if exp.enqueue:
        # A resume queues only those its study holds no trial of (``study.enqueue``).
        first = len(exp.enqueue) if resumed is None else resumed.queued
        parts = [f"{first} trained first"] if first else []
        if first < len(exp.enqueue):
            parts.append(f"{len(exp.enqueue) - first} in the study already, not queued again")
        lines.append(f"enqueue     {len(exp.enqueue)} configuration(s): {'; '.join(parts)}")
        lines += [f"  {i}  {entry}" for i, entry in enumerate(exp.enqueue)]
    if exp.keep_models:
        lines.append(
            f"keep        the trained models of the {exp.keep_models} best trial(s), in "
            f"{run_dir / rundir.TRIALS_DIR}"
        )
    from supervisor.study.storage import redact

    lines.append(f"storage     {redact(storage)}{resume}")  # a terminal may be recorded
    if opts.scheduler:
        where = f"scheduler {opts.scheduler}"
    elif opts.launcher:
        where = f"the cluster of launcher {opts.launcher}"
    else:
        from supervisor.clusters.local import local_size
        from supervisor.commands.packing import packing

        workers, threads, note = packing(
            opts, exp.benchmark, True, exp.options, exp.node.to_dict()
        )
        n, per = local_size(workers, threads)
        where = f"a local Dask cluster of {n} workers x {per} thread(s) per trial{note}"
    if exp.node.to_dict() != NodeSettings().to_dict():
        lines.append(f"node        xla {exp.node.xla}, precision {exp.node.precision}")
    lines.append(would_run(exp, resumed, where))
    if exp.ensemble is not None:
        e = exp.ensemble
        pool = f", pool {e.pool}" if e.select in ("greedy", "auto") else ""
        pool += f", the best of {e.candidates} configurations" if e.candidates > 1 else ""
        lines.append(f"then        an ensemble: select {e.select}, size {e.size}{pool}")
    return "\n".join(lines)


def ensemble_follows(summary: Summary) -> bool:
    """Whether the space file's ensemble is built after this search: not when a signal,
    fail fast, a cluster that runs nothing or a ``supervisor stop`` ended it (the user or
    the campaign asked for no more training)."""
    from supervisor.study.outcomes import CANCELLING

    return summary.stopped_by not in (*CANCELLING, "requested")


def print_summary(summary: Summary, report: Path | None) -> None:
    """What the run did and why it stopped; ``summary.exit_code`` is what the command
    exits with (0 only when the budget, the space file's timeout, target or patience was
    reached)."""
    if summary.stopped_by == "budget" and summary.finished >= summary.requested:
        why = "budget reached"
    elif summary.stopped_by == "timeout":
        why = "timeout reached"
    elif summary.stopped_by == "interrupt":
        signal = summary.signal or "SIGINT"
        why = "interrupted by the user" if signal == "SIGINT" else f"{signal} received"
    elif summary.stopped_by == "failing":
        why = "every first trial failed the same way"
    elif summary.stopped_by in ("target", "patience", "requested"):
        why = summary.early or f"budget.{summary.stopped_by} reached"
    elif summary.stopped_by == "cluster":
        why = "the cluster can run no trial"
    elif summary.stopped_by == "disk":
        why = "the run directory's disk is full"
    else:  # the driver waits for the budget; should it ever not, it is not "reached"
        why = "budget not reached"
    from supervisor.report.fmt import seconds

    # A campaign of days read "after 259203.4 s"; now "after 3 d 00 h", as status shows.
    print(f"\nStopped: {why} after {seconds(summary.elapsed)}")
    if summary.failure:
        print(f"Error: {summary.failure}")
        fix = {
            "cluster": "Fix the launcher profile",
            "disk": "Free space there (or ask for a larger quota)",
        }.get(summary.stopped_by, "Fix the model or its options")
        print(f"{fix}, then run the same command again.")
    print(f"Finished trials: {summary.finished} of {summary.requested} requested")
    for outcome, count in sorted(summary.states.items()):
        print(f"  this run: {count} {outcome}")
    if summary.recovered.zombies:
        print(f"  closed {len(summary.recovered.zombies)} trial(s) left by a dead driver")
    if report is not None:
        print(f"Report: {report}")
    if summary.stopped_by in ("target", "patience"):
        print(f"To search on, change budget.{summary.stopped_by} and run the same command again.")
    if summary.stopped_by in ("interrupt", "timeout", "requested"):
        if os.environ.get(CHAIN_ENV) and summary.signal == "SIGTERM":
            pass  # scancel or a requeue: the link's script says what becomes of the chain
        elif os.environ.get(CHAIN_ENV):
            print(
                "The chain's next driver job continues the search if this one finished a"
                " trial (supervisor status shows it)."
            )
        else:
            print("Run the same command again to continue the search.")
