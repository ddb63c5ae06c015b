"""The summary at the top of the report: what ran, where, how long, the outcome, the best
configuration and a command that runs it again; and the table of the best trials."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.config.samplers import history_limit
from supervisor.report import fmt
from supervisor.report.cost import outcome
from supervisor.report.page import Html, details, esc, kv_table, note, table
from supervisor.study import attrs
from supervisor.study.kept_models import keep_of, kept_of
from supervisor.study.stopping import stopped_early

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign
    from supervisor.study.records import TrialRecord

BEST_ROWS = 20
INFEASIBLE_ROWS = 10  # of the trials that break the constraints, the best shown
PARETO_ROWS = 50
HOSTS_LISTED = 12
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def summary(
    camp: Campaign, run_info: Mapping[str, Any], links: Sequence[tuple[str, str]]
) -> list[Html]:
    out: list[Html] = []
    if links:
        anchors = " · ".join(f'<a href="{esc(href)}">{esc(title)}</a>' for title, href in links)
        out.append(Html(f'<p class="links">Related reports: {anchors}</p>'))
    states = Counter(t.state.name for t in camp.trials)
    out.append(Html("<h3>Trials</h3>"))
    out.append(
        table(
            [*STATES, "total"],
            [[*(states.get(s, 0) for s in STATES), len(camp.trials)]],
            numeric=range(len(STATES) + 1),
        )
    )
    out.append(kv_table(_what_where_how_long(camp, states)))

    if not camp.ranked:
        out.append(note("No complete trial yet."))
    elif not camp.feasible:
        out.append(note(f"None of the {len(camp.ranked)} complete trials keeps the constraints."))
    elif not camp.multi:
        best = camp.feasible[0]
        out.append(Html(f"<h3>Best trial: #{best.number}</h3>"))
        out.append(kv_table(_trial_rows(camp, best)))
        out += rerun(camp, best)
    else:
        pareto = camp.pareto
        shown = f", the first {PARETO_ROWS} shown" if len(pareto) > PARETO_ROWS else ""
        out.append(Html(f"<h3>Pareto-optimal trials ({len(pareto)}{esc(shown)})</h3>"))
        out.append(trials_table(camp, pareto[:PARETO_ROWS]))
        out += rerun(camp, pareto[0])

    if run_info:
        out.append(Html("<h3>Run</h3>"))
        out.append(kv_table((k, fmt.info(k, v)) for k, v in run_info.items()))
    if camp.config:
        body = Html(f"<pre>{esc(fmt.yaml_text(camp.config))}</pre>")
        out.append(details("Experiment configuration", body))
    return out


def sampler_text(sampler: Mapping[str, Any], finished: int) -> str:
    """The sampler's name, and what of the study it models once that is not all of it."""
    name = str(sampler["name"])
    options = sampler.get("options")
    try:
        limit = history_limit(name, options if isinstance(options, dict) else {})
    except (TypeError, ValueError):  # a stored value of the wrong type: say no more
        return name
    if limit is None or finished <= limit:
        return name
    return (
        f"{name}: models a view of {limit} of the {finished} finished trials (the best "
        f"tenth and a sample of the rest, stratified by value) and at most {limit} pending; "
        "sampler option history"
    )


def _what_where_how_long(camp: Campaign, states: Counter[str]) -> list[tuple[object, object]]:
    config = camp.config
    rows: list[tuple[object, object]] = [("study", camp.study_name)]
    bench = config.get("benchmark")
    if isinstance(bench, dict) and bench.get("name"):
        options = bench.get("options") or {}
        text = str(bench["name"])
        if options:
            text += " (" + ", ".join(f"{k}={v!r}" for k, v in options.items()) + ")"
        rows.append(("benchmark", text))
    rows.append(("objectives", camp.objectives_text))
    budget = config.get("budget")
    if isinstance(budget, dict) and budget.get("trials"):
        done = sum(1 for t in camp.trials if attrs.counts_toward_budget(t))
        rows.append(("budget", f"{done} of {budget['trials']} trials finished"))
        pairs = list(zip(camp.names, camp.directions, strict=True))
        if why := stopped_early(budget, pairs, camp.trials):
            rows.append(("stopped early", why))
    warm: Counter[str] = Counter()
    warm_failed: Counter[str] = Counter()
    for t in camp.trials:
        if (r := camp.record(t)).warm_start:
            run = str(r.warm_start).rpartition("#")[0]
            warm[run] += 1
            warm_failed[run] += t.state.name == "FAIL"
    if warm:
        told = ", ".join(
            f"{n} from {run}" + (f" ({warm_failed[run]} failed there)" if warm_failed[run] else "")
            for run, n in warm.most_common()
        )
        rows.append(("warm start", f"{told} (told untrained, outside the budget)"))
    sampler = config.get("sampler")
    if isinstance(sampler, dict) and sampler.get("name"):
        modelled = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
        rows.append(("sampler", sampler_text(sampler, modelled)))
    if camp.constrained:
        rows.append(("constraints", constraints_text(camp)))
    keep = keep_of(camp.config)
    if camp.run_dir is not None and (
        kept := kept_of(camp.trials, camp.directions, camp.run_dir, keep)
    ):
        shown = ", ".join(map(str, kept[:10])) + (", …" if len(kept) > 10 else "")
        where = camp.run_dir / rundir.TRIALS_DIR
        rows.append(("models kept", f"trials {shown}, best first, in {where} (Run.model(n))"))

    records = [camp.record(t) for t in camp.trials]
    hosts = Counter(r.hostname for r in records if r.hostname is not None)
    workers = {fmt.worker(r) for r in records} - {""}
    if hosts:
        listed = ", ".join(h for h, _ in hosts.most_common(HOSTS_LISTED))
        more = f" and {len(hosts) - HOSTS_LISTED} more" if len(hosts) > HOSTS_LISTED else ""
        rows.append(("nodes", f"{len(hosts)}: {listed}{more}"))
    if workers:
        rows.append(("workers", str(len(workers))))

    # Trial time is the time trials ran on a worker: not that of trials told a result (warm
    # start, duplicates), nor the queue time of one interrupted before it started.
    ran = [r for r in records if outcome(r) is not None and r.worker is not None]
    finished = [r for r in ran if r.state.is_finished()]
    durations = [d for d in map(fmt.duration, finished) if d is not None]
    starts = [s for s in map(fmt.start_time, ran) if s is not None]
    ends = [e for e in map(fmt.end_time, finished) if e is not None]
    if starts:
        rows.append(
            ("first trial started", fmt.time_of_day(dt.datetime.fromtimestamp(min(starts))))
        )
    if ends:
        rows.append(("last trial finished", fmt.time_of_day(dt.datetime.fromtimestamp(max(ends)))))
    if starts:
        running = states.get("RUNNING", 0) > len(camp.orphans)
        last = camp.now if running or not ends else max(ends)
        span = fmt.seconds(max(0.0, last - min(starts)))
        rows.append(("campaign time", span + (" so far (trials are running)" if running else "")))
    if durations:
        total = sum(durations)
        rows.append(("total trial time", f"{fmt.seconds(total)} over {len(durations)} trials"))
        rows.append(("mean trial time", fmt.seconds(total / len(durations))))
    nonfinite = states.get("COMPLETE", 0) - len(camp.ranked)
    if nonfinite:
        text = f"{nonfinite} complete trials, left out of the rankings and value plots"
        rows.append(("non-finite values", text))
    if camp.failed:
        kinds = Counter(camp.record(t).failure or "unknown" for t in camp.failed)
        rows.append(("failures", ", ".join(f"{n} {k}" for k, n in kinds.most_common())))
    if camp.orphans:
        text = f"{len(camp.orphans)} RUNNING trials whose driver is gone (re-run on resume)"
        rows.append(("orphaned", text))
    return rows


def constraints_text(camp: Campaign) -> str:
    """The bounds, whether the sampler steers by them, and how many trials keep them."""
    from supervisor.config.constraints import STEERED, stored

    bounds = stored(camp.config.get("constraints"))
    text = ", ".join(c.text() for c in bounds) or "set on the trials"
    sampler = camp.config.get("sampler")
    name = sampler.get("name") if isinstance(sampler, dict) else None
    if isinstance(name, str):
        steers = "steers by them" if name in STEERED else "does not steer by them"
        text += f" (the {name} sampler {steers})"
    return (
        f"{text}: {len(camp.feasible)} of {len(camp.ranked)} complete trials keep them;"
        " the others are never the best nor on a Pareto front (grey in the plots)"
    )


def _trial_rows(camp: Campaign, trial: FrozenTrial) -> list[tuple[object, object]]:
    rows: list[tuple[object, object]] = [
        (name, fmt.number(v)) for name, v in zip(camp.names, trial.values or (), strict=False)
    ]
    # Full precision: these are the values to copy into a configuration.
    rows += [
        (f"param {k}", repr(v) if isinstance(v, float) else v) for k, v in trial.params.items()
    ]
    record = camp.record(trial)
    if record.warm_start:  # trained in an earlier run, told to this one
        rows.append(("warm start", f"trained in {record.warm_start}, not in this campaign"))
        return rows
    seconds = fmt.duration(record)
    if seconds is not None:
        rows.append(("duration", fmt.seconds(seconds)))
    if fmt.worker(record):
        rows.append(("worker", fmt.worker(record)))
    if trial.datetime_complete is not None:
        rows.append(("finished", fmt.time_of_day(trial.datetime_complete)))
    return rows


def rerun(camp: Campaign, trial: FrozenTrial) -> list[Html]:
    """A space file that runs this one configuration again, and the command to run it.

    Every searched parameter becomes a fixed one and the budget one trial, so the rerun
    trains the same configuration on the same data (same data seed). Its model seed is the
    campaign seed, where the trial had seed + its number: the weights start elsewhere.
    """
    config = camp.config
    needed = ("benchmark", "objectives", "budget")
    if not all(isinstance(config.get(k), (dict, list)) for k in needed):
        return []  # not a supervisor campaign: the parameters above are all there is
    kept = {"constraints": config["constraints"]} if config.get("constraints") else {}
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{camp.study_name}-trial-{trial.number}")[:120]
    space = {
        "study": name,
        "description": f"Trial {trial.number} of {camp.study_name}, run again alone.",
        "benchmark": config["benchmark"],
        "objectives": config["objectives"],
        "params": {},
        "fixed": {**(config.get("fixed") or {}), **trial.params},
        "sampler": "random",
        "budget": {"trials": 1, "epochs": config["budget"].get("epochs", 1)},
        "seed": config.get("seed", 0),
        **kept,  # its rerun is judged as it was
    }
    command = (
        f"cat > {name}.yaml <<'EOF'\n{fmt.yaml_text(space)}EOF\nsupervisor search {name}.yaml\n"
    )
    seed = config.get("seed", 0)
    warm = camp.record(trial).warm_start
    itself = (
        f"the trial itself was trained in {warm}, with that run's seeds"
        if warm
        else f"the trial itself was seeded with {seed} + {trial.number}"
    )
    return [
        Html(f"<h3>Run trial #{trial.number} again</h3>"),
        note(
            "Its parameters fixed, one trial, the same data. The model seed is the campaign "
            f"seed ({seed}); {itself}."
        ),
        Html(f'<pre class="command">{esc(command)}</pre>'),
    ]


def best_trials(camp: Campaign) -> list[Html]:
    if not camp.ranked:
        return [note("No complete trial yet.")]
    best = camp.feasible[:BEST_ROWS]
    kept = " that keep the constraints" if camp.constrained else ""
    head = (
        f"The {len(best)} best of {len(camp.feasible)} complete trials{kept} by"
        f" {camp.names[0]} ({camp.directions[0]})."
    )
    out = (
        [note(head), trials_table(camp, best)]
        if best
        else [note("No complete trial keeps the constraints.")]
    )
    keep = {t.number for t in camp.feasible}
    broke = [t for t in camp.ranked if t.number not in keep]
    if broke:  # what the constraints ruled out, and by how much
        n = len(broke[:INFEASIBLE_ROWS])
        out.append(
            note(
                f"The {n} best of the {len(broke)} complete trials that break the constraints"
                " (never counted as the best):"
            )
        )
        out.append(trials_table(camp, broke[:INFEASIBLE_ROWS], breaks=True))
    return out


def _trained_for(record: TrialRecord) -> float | None:
    """Seconds it trained in this campaign: none for a trial told a result (warm start,
    a twin's), whose times are those of the telling (it read "0.0 s" for hour-long ones)."""
    if record.warm_start or record.duplicate_of is not None:
        return None
    return fmt.duration(record)


def _where(record: TrialRecord) -> str:
    """The worker a trial ran on, or the earlier run a warm-start trial comes from."""
    return f"warm start: {record.warm_start}" if record.warm_start else fmt.worker(record)


def trials_table(camp: Campaign, trials: Sequence[FrozenTrial], breaks: bool = False) -> Html:
    """``breaks``: a column of the constraints each trial breaks, and by how much."""
    params = sorted({k for t in trials for k in t.params})
    n_obj = len(camp.names)
    numeric_params = [
        i
        for i, k in enumerate(params)
        if all(fmt.is_number(t.params[k]) for t in trials if k in t.params)
    ]
    rows = [
        [
            t.number,
            *(fmt.number(v) for v in (t.values or [None] * n_obj)),
            *(fmt.number(t.params[k]) if k in t.params else "" for k in params),
            fmt.seconds(d) if (d := _trained_for(camp.record(t))) is not None else "",
            _where(camp.record(t)),
            *([_breaks(t)] if breaks else []),
        ]
        for t in trials
    ]
    numeric = [0, *range(1, 1 + n_obj), *(1 + n_obj + i for i in numeric_params)]
    numeric.append(1 + n_obj + len(params))
    heads = ["trial", *camp.names, *params, "duration", "worker"]
    return table([*heads, *(["breaks"] if breaks else [])], rows, numeric=numeric)


def _breaks(trial: FrozenTrial) -> str:
    """The constraints the trial breaks, each with how far out it is, or that it did not
    measure the metric (its constraint value then is a stand-in, not a distance); empty:
    none."""
    import math

    from supervisor.study.feasibility import violations

    metrics = trial.user_attrs.get(attrs.METRICS)
    found = metrics if isinstance(metrics, Mapping) else {}

    def why(metric: str, by: float) -> str:
        value = found.get(metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{metric} not measured"
        if not math.isfinite(value):
            return f"{metric} is {value}"  # nan, inf
        return f"{metric} by {fmt.number(by)}"

    return ", ".join(why(m, v) for m, v in violations(trial).items())
