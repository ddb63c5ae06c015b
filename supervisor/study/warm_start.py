"""Warm start: the finished trials of earlier runs, told to this run's study untrained.

The sampler then proposes with their results from the first trial on, and a configuration
one of them already measured is not trained again (the duplicate index finds it). They are
marked (``attrs.WARM_START``: ``"<run>#<number>"``) and never count toward the budget.

Trials that failed by the model there (raised, diverged) come too, as failed trials: they
tell a sampler that avoids failures (``failures: avoid``) where training fails before this
run spends a trial to learn it. Failures that belong to that run's limits and nodes (its
time or memory limit, workers that died) are left out and counted.

``plan`` reads the earlier runs and checks them against the space before anything is
written: a path that is not a run, another benchmark, or a study that never measured this
space's objectives is refused (one line, exit 2). Within a fitting run, a trial is taken
when every parameter active in this space has a value inside its range (after
``rename``); parameters this space does not search are dropped; a trial missing an active
parameter, or outside the space, is left out and counted. ``apply`` adds the trials once
per source run, the run a name resolves to (``old``, ``runs/old`` and its absolute path
are one run): a resumed campaign does not add them again, one killed while adding
them adds the rest only, and drivers started together on one journal add them one after
the other (under its lock), each trial once.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.config.params import ParamSpec, contains, is_active
from supervisor.errors import UserError
from supervisor.execution.trial import DIED_REPEATEDLY, MEMORY_LIMIT, TIME_LIMIT
from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.config.experiment import Experiment
    from supervisor.config.warm_start import WarmSource

# Study attr: {source key: {"mark": its trials' mark, "trials": how many, None until all
# are added}}. Runs of earlier versions hold {the source as typed: trials added}.
IMPORTED = "supervisor:warm_started"
# Model failures that depend on the earlier run's limits and machine, not the configuration.
MACHINE_BOUND = (TIME_LIMIT, MEMORY_LIMIT, DIED_REPEATEDLY)
# NSGA-II and -III count a trial in a population by its generation tag alone (Optuna's
# BaseGASampler): untagged, a warm start's trials were in none, and the first population
# (50 trials) was drawn at random whatever they had measured. Tagged as the first
# generation, they are its members: new trials join it, or are bred from it.
GA_FIRST_GENERATION = {"NSGAIISampler:generation": 0, "NSGAIIISampler:generation": 0}


@dataclass
class Source:
    """What one earlier run gives this one."""

    label: str  # the run directory, as the user named it: for messages
    key: str = ""  # the run it resolves to (``identify``); "": the label
    runs_root: Path = Path("runs")  # where a study name is looked up
    name: str = ""  # what its trials' marks call it: ``<name>#<number>``
    trials: list[FrozenTrial] = field(default_factory=list)  # ready to add
    failed: int = 0  # of those, trials that failed by the model there
    left_out: Counter[str] = field(default_factory=Counter)  # reason -> trials
    dropped: set[str] = field(default_factory=set)  # its parameters this space lacks
    notes: list[str] = field(default_factory=list)  # differences that may matter
    # Trials of it an earlier start of this run added (``earlier``; None: none did, or
    # not all): this start adds none of it.
    earlier: int | None = None

    def line(self) -> str:
        if self.earlier is not None:
            # Said "6 trials from a" on a resume after run a grew from 3: only 3 are told.
            now = len(self.trials)
            more = f"; it has {now} now, the others are not added" if now > self.earlier else ""
            return f"{self.earlier} trials from {self.label}, added at an earlier start{more}"
        text = f"{len(self.trials)} trials from {self.label}"
        if self.failed:
            text += f", {self.failed} of them failed there"
        if self.left_out:
            text += " (left out: " + ", ".join(f"{n} {r}" for r, n in self.left_out.items()) + ")"
        if self.dropped:
            text += f"; not in this space: {', '.join(sorted(self.dropped))}"
        return "; ".join([text, *self.notes])


def plan(exp: Experiment, runs_root: Path, own_run: Path) -> list[Source]:
    """Every source run of ``exp.warm_start`` read and fitted to its space; raises
    UserError for a source that cannot be used. Reads only."""
    sources: dict[str, Source] = {}
    for spec in exp.warm_start:
        where = f"{spec.where}: {spec.run}"
        try:
            run_dir, record = rundir.resolve(spec.run, runs_root)
        except UserError as exc:
            if _added_before(own_run, spec.run):
                continue  # moved or deleted since its trials were added: nothing to do
            raise UserError(f"{spec.where}: {exc}") from None
        if run_dir.resolve() == own_run.resolve():
            raise UserError(f"{where}: that is this run; warm start from an earlier one")
        key = identify(run_dir, record)
        if key in sources:  # one run under two names (the file's and --warm-start's)
            continue
        study = _load(record.study, record.storage_url(run_dir), where)
        sources[key] = fit(exp, spec, study, where)
        sources[key].key, sources[key].runs_root = key, runs_root
    return list(sources.values())


def _added_before(own_run: Path, run: str) -> bool:
    """Whether an earlier start of this run added every trial of the source ``run`` names
    (its trials are marked with its folder's name): a resume needs the source no more."""
    from supervisor.study.storage import load_study

    try:
        record = rundir.read_record(own_run)
        study = load_study(record.storage_url(own_run), record.study)
    except UserError:  # a new run, or one whose storage cannot be read: no
        return False
    name = Path(run).name
    for key, entry in (study.user_attrs.get(IMPORTED) or {}).items():
        if isinstance(entry, dict):
            if entry.get("mark") == name and entry.get("trials") is not None:
                return True
        elif key == run or Path(key).name == name:  # earlier versions: {as typed: count}
            return True
    return False


def identify(run_dir: Path, record: rundir.RunRecord) -> str:
    """A run however it is named: its study in its storage, a file's path made absolute."""
    from supervisor.study.storage import JOURNAL_PREFIX, redact

    url = record.storage_url(run_dir)
    if url.startswith(JOURNAL_PREFIX) or "://" not in url:
        url = JOURNAL_PREFIX + str(Path(url.removeprefix(JOURNAL_PREFIX)).resolve())
    elif url.startswith("sqlite:///"):
        url = "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    return f"{record.study}@{redact(url)}"


def apply(study: optuna.Study, sources: list[Source]) -> int:
    """Add each source's trials to ``study`` that an earlier start did not add; returns
    how many were added now.

    Each trial is one write, marked ``<name>#<number>``, and the source's name is recorded
    before its first trial: whenever a start was killed, the next one finds the trials
    already added by their marks and adds the others, each source trial once."""
    from supervisor.study.storage import exclusive

    # Drivers started together (one space file, one run) import under the journal's
    # lock, one after the other: each read what the others added (each trial once).
    with exclusive(study):
        return _apply(study, sources)


def earlier(study: optuna.Study, sources: list[Source]) -> None:
    """Set each source's ``earlier``: the trials an earlier start of ``study`` added of it
    (reads only: also for ``--dry-run`` and ``validate``)."""
    done: dict[str, Any] = dict(study.user_attrs.get(IMPORTED) or {})
    for source in sources:
        entry = _recorded(done, source, source.key or source.label)
        count = None if entry is None else entry["trials"]
        source.earlier = int(count) if isinstance(count, int | float) else None


def _apply(study: optuna.Study, sources: list[Source]) -> int:
    earlier(study, sources)
    done: dict[str, Any] = dict(study.user_attrs.get(IMPORTED) or {})
    present: set[Any] | None = None  # the marks in the study, read once if needed
    added = 0
    for source in sources:
        key = source.key or source.label
        entry = _recorded(done, source, key)
        if entry is not None and entry["trials"] is not None:
            continue
        if entry is None:
            entry = {"mark": _free_name(done, source.name), "trials": None}
            done[key] = entry
            study.set_user_attr(IMPORTED, dict(done))
        if present is None:
            present = {
                t.user_attrs.get(attrs.WARM_START) for t in study.get_trials(deepcopy=False)
            }
        trials = [
            t
            for t in _marked(source.trials, entry["mark"])
            if t.user_attrs[attrs.WARM_START] not in present
        ]
        study.add_trials(trials)
        done[key] = {"mark": entry["mark"], "trials": len(source.trials)}
        study.set_user_attr(IMPORTED, dict(done))
        added += len(trials)
    return added


def _recorded(done: dict[str, Any], source: Source, key: str) -> dict[str, Any] | None:
    """What an earlier start recorded of ``source``: under its key, or (earlier versions,
    which recorded a finished import only) under a name that resolves to the same run."""
    entry = done.get(key)
    if isinstance(entry, dict):
        return {"mark": str(entry.get("mark")), "trials": entry.get("trials")}
    for label, trials in done.items():
        if isinstance(trials, dict):
            continue
        if label == source.label or _key_of(label, source.runs_root) == source.key:
            return {"mark": Path(label).name, "trials": trials}
    return None


def _key_of(run: str, runs_root: Path) -> str | None:
    try:
        return identify(*rundir.resolve(run, runs_root))
    except UserError:  # gone since: not one of this start's sources
        return None


def _free_name(done: dict[str, Any], name: str) -> str:
    """``name``, or ``name-2``, ... where another source's trials are marked ``name``:
    the marks tell the sources apart."""
    taken = {e.get("mark") if isinstance(e, dict) else Path(k).name for k, e in done.items()}
    free, n = name, 2
    while free in taken:
        free, n = f"{name}-{n}", n + 1
    return free


def _marked(trials: list[FrozenTrial], name: str) -> list[FrozenTrial]:
    """The trials with marks ``<name>#<number>``."""
    marked = []
    for trial in trials:
        old, _, number = str(trial.user_attrs[attrs.WARM_START]).rpartition("#")
        if old != name:
            trial = copy.copy(trial)
            trial.user_attrs = {**trial.user_attrs, attrs.WARM_START: f"{name}#{number}"}
        marked.append(trial)
    return marked


def _load(name: str, url: str, where: str) -> optuna.Study:
    import optuna

    from supervisor.study.storage import NoStudies, open_storage

    try:  # read only: a source is never created or changed
        return optuna.load_study(study_name=name, storage=open_storage(url, read_only=True))
    except (KeyError, NoStudies):
        raise UserError(f"{where}: its storage holds no study {name!r}") from None


def fit(exp: Experiment, spec: WarmSource, study: optuna.Study, where: str) -> Source:
    """What ``study`` (the run ``spec`` names) gives ``exp``: its trials fitted to this
    space; raises UserError for a study of another benchmark or objective."""
    from optuna.trial import TrialState, create_trial

    from supervisor.study.feasibility import system_attrs

    benchmark = study.user_attrs.get(attrs.BENCHMARK)
    if benchmark is not None and benchmark != exp.benchmark:
        raise UserError(f"{where}: a run of benchmark {benchmark!r}, not {exp.benchmark!r}")
    told = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if attrs.WARM_START not in t.user_attrs and attrs.DUPLICATE_OF not in t.user_attrs
    ]
    trials = [t for t in told if t.state == TrialState.COMPLETE]
    names = exp.metric_names
    old_objectives = list(study.user_attrs.get(attrs.OBJECTIVES) or [])
    if trials and not any(_values(t, names, old_objectives) for t in trials):
        measured = old_objectives or sorted(_metrics(trials[0]))
        raise UserError(
            f"{where}: a study of another objective (it measured {', '.join(measured)};"
            f" this space optimizes {', '.join(names)})"
        )
    label = Path(spec.run).name
    source = Source(spec.run, name=label)
    source.notes = differences(exp, study.user_attrs.get(attrs.CONFIG) or {})
    for trial in told:
        failed = trial.state == TrialState.FAIL
        if failed and (
            trial.user_attrs.get(attrs.FAILURE, "model") != "model" or not trial.params
        ):
            continue  # run again there (lost worker, interrupted) or never sampled: no news
        if failed and trial.user_attrs.get(attrs.ERROR_TYPE) in MACHINE_BOUND:
            source.left_out["failed by a limit of that run"] += 1
            continue
        values = None if failed else _values(trial, names, old_objectives)
        params, why = _params(exp.params, trial.params, spec.rename, source.dropped)
        if (values is None and not failed) or params is None:
            source.left_out[why or "without a value of the objectives"] += 1
            continue
        user_attrs: dict[str, Any] = {attrs.WARM_START: f"{label}#{trial.number}"}
        if failed:
            source.failed += 1
            user_attrs[attrs.FAILURE] = "model"
            for key in (attrs.ERROR_TYPE, attrs.ERROR):
                if key in trial.user_attrs:
                    user_attrs[key] = trial.user_attrs[key]
        else:
            user_attrs[attrs.METRICS] = _metrics(trial)
        source.trials.append(
            create_trial(
                state=trial.state,
                params=params,
                distributions={p.name: p.distribution() for p in exp.params if p.name in params},
                values=values,
                user_attrs=user_attrs,
                # Judged by this space's constraints, as a trial it trains would be.
                system_attrs=None
                if failed
                else {**system_attrs(exp.constraints, _metrics(trial)), **GA_FIRST_GENERATION},
            )
        )
    return source


def _metrics(trial: FrozenTrial) -> dict[str, float]:
    raw = trial.user_attrs.get(attrs.METRICS)
    return dict(raw) if isinstance(raw, dict) else {}


def _values(trial: FrozenTrial, names: list[str], old: list[str]) -> list[float] | None:
    """The trial's values of this space's objectives: from its stored metrics, or its
    Optuna values when the earlier study optimized the same metrics."""
    metrics = _metrics(trial)
    if all(n in metrics for n in names):
        found = [metrics[n] for n in names]
    elif old == names and trial.values is not None:
        found = list(trial.values)
    else:
        return None
    ok = all(isinstance(v, int | float) and math.isfinite(v) for v in found)
    return [float(v) for v in found] if ok else None


def _params(
    specs: tuple[ParamSpec, ...], old: dict[str, Any], rename: dict[str, str], dropped: set[str]
) -> tuple[dict[str, Any] | None, str]:
    """This space's active parameters from an earlier trial's, or None and why not."""
    given = {rename.get(k, k): v for k, v in old.items()}
    values: dict[str, Any] = {}
    for spec in specs:
        if not is_active(spec, values):
            continue
        if spec.name not in given:
            return None, f"missing {spec.name}"
        if not contains(spec, given[spec.name]):
            return None, f"{spec.name} outside this space"
        value = given[spec.name]
        values[spec.name] = int(value) if spec.kind == "int" else value
    dropped.update(set(given) - {s.name for s in specs})
    return values, ""


def differences(exp: Experiment, old: dict[str, Any]) -> list[str]:
    """What differs between the earlier run and this one in ways that change results."""
    notes = []
    old_epochs = (old.get("budget") or {}).get("epochs")
    if old_epochs is not None and old_epochs != exp.budget.epochs:
        notes.append(f"trained {old_epochs} epochs, this run {exp.budget.epochs}")
    old_fixed = old.get("fixed") or {}
    changed = sorted(k for k in {*old_fixed, *exp.fixed} if old_fixed.get(k) != exp.fixed.get(k))
    if changed:
        notes.append(f"fixed values differ: {', '.join(changed)}")
    old_options = (old.get("benchmark") or {}).get("options")
    if old_options is not None and old_options != exp.options:
        notes.append("benchmark options differ")
    return notes
