"""Which trained models an ensemble needs, which of them exist already, and training the rest.

A member is a configuration (the parameters of a search trial) and a seed. One that the
search trained with the outputs kept (``Benchmark.ensemble_outputs``, saved when the
space file has an ``ensemble:`` section) is reused as it is. The others are trained in
a study of their own, ``<study>.ensemble``, in the same storage, by the same driver: each
is queued with its parameters, seed and source trial (``supervisor:seed``,
``supervisor:member_of``), so the driver's fault handling, retries and resume apply, and
a rerun after a kill trains only what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.ensemble.aggregate import Member
from supervisor.errors import UserError
from supervisor.study import attrs
from supervisor.study.records import TrialRecord

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.clusters.handle import ClusterHandle
    from supervisor.config.experiment import Experiment
    from supervisor.study.driver import Summary

SEED_STRIDE = 1_000_003  # seeds of the extra members of ``seeds``: far from the search's

Key = tuple[int | None, int | None, int | None]  # what makes a member: source, seed, epochs


@dataclass(frozen=True)
class Wanted:
    """A member to have: the search trial whose configuration it trains, and its seed."""

    source: int
    seed: int


def member_study_name(study_name: str) -> str:
    return f"{study_name}.ensemble"


def ranked(study: optuna.Study, maximize: bool) -> list[FrozenTrial]:
    """Complete trials of the search, best first by the first objective; duplicates (told
    with an earlier trial's values, never trained) and trials that break the space file's
    constraints (an ensemble of them would break them too) are left out."""
    from optuna.trial import TrialState

    from supervisor.study.feasibility import feasible

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and TrialRecord.from_frozen(t).duplicate_of is None and feasible(t)
    ]
    return sorted(trials, key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))


def search_seed(exp: Experiment, trial: FrozenTrial) -> int:
    """The seed the driver trained ``trial`` with (``supervisor.study.recorder.trial_seed``)."""
    record = TrialRecord.from_frozen(trial)
    if record.seed is not None:
        return record.seed % 2**32
    chain = record.retry_of if record.retry_of is not None else record.number
    return (exp.seed + chain) % 2**32


def wanted(
    exp: Experiment, candidates: list[FrozenTrial], seeds: int, reseeded: int = 1
) -> list[Wanted]:
    """Each candidate with its own seed; with ``seeds`` > 1, the first ``reseeded``
    candidates again with ``seeds - 1`` further seeds each."""
    out = [Wanted(t.number, search_seed(exp, t)) for t in candidates]
    for best in candidates[:reseeded] if seeds > 1 else []:
        base = search_seed(exp, best)
        out += [Wanted(best.number, (base + i * SEED_STRIDE) % 2**32) for i in range(1, seeds)]
    return out


def load_outputs(run_dir: Path, trial: FrozenTrial) -> dict[str, Any] | None:
    """The arrays a trial saved for ensembles, or None where it has none (readable)."""
    from supervisor.benchmarks.checkpoint import load_npz

    relative = TrialRecord.from_frozen(trial).outputs
    if relative is None:
        return None
    try:
        return load_npz(run_dir / relative)
    except (OSError, ValueError, EOFError):
        return None  # removed or damaged: the member is trained again


def trained_as(exp: Experiment, trial: FrozenTrial) -> dict[str, Any]:
    """What the search gave ``trial`` (``attrs.TRAIN_AS``): its recorded options, inputs
    and epochs (a resume may have changed the space file since), else the experiment's
    (a trial recorded before they were). A member of it trains the same model."""
    prov = TrialRecord.from_frozen(trial).provenance
    options = prov.options if prov is not None and prov.options is not None else exp.options
    inputs = prov.inputs if prov is not None and prov.inputs is not None else exp.fixed
    epochs = prov.epochs if prov is not None and prov.epochs else exp.budget.epochs
    inputs = {**inputs, **trial.params}
    return {"options": dict(options), "inputs": inputs, "epochs": int(epochs)}


class MemberSource:
    """Finds members among the search's trials and the member study's, by ``Wanted``."""

    def __init__(self, exp: Experiment, search: optuna.Study, run_dir: Path) -> None:
        self.exp, self.search, self.run_dir = exp, search, run_dir
        self.member_dir = run_dir / rundir.ENSEMBLE_DIR
        self.by_number = {t.number: t for t in search.get_trials(deepcopy=False)}

    def find(self, want: Wanted, trained: optuna.Study | None) -> Member | None:
        source = self.by_number[want.source]
        if search_seed(self.exp, source) == want.seed:
            outputs = load_outputs(self.run_dir, source)
            if outputs is not None:
                return _member(source, self.search.study_name, f"search #{source.number}", outputs)
        if trained is None:
            return None
        from optuna.trial import TrialState

        epochs = trained_as(self.exp, source)["epochs"]
        for t in trained.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if _member_key(t) == (want.source, want.seed, epochs):
                outputs = load_outputs(self.member_dir, t)
                if outputs is not None:
                    loaded = attrs.FROM_MODEL in t.user_attrs
                    how = ", its kept model" if loaded else ""
                    label = f"search #{want.source}, seed {want.seed} (member #{t.number}{how})"
                    return _member(t, trained.study_name, label, outputs, loaded)
        return None


def judged(
    exp: Experiment, have: list[tuple[Wanted, Member]], search: str, trained: optuna.Study | None
) -> tuple[list[tuple[Wanted, Member]], list[str]]:
    """The members that keep the space file's constraints, and why each other is left
    out. A member trained for the ensemble (another seed, or its configuration trained
    again) measures anew and may break a bound its search trial kept (an accuracy floor,
    a latency ceiling): it would make the ensemble break it too."""
    from supervisor.study.feasibility import values

    if not exp.constraints or trained is None:
        return have, []
    keep, out = [], []
    by_number = {t.number: t for t in trained.get_trials(deepcopy=False)}
    for want, member in have:
        # The search's own model (reused, or its kept model loaded) kept them already:
        # a latency measured again on another node does not judge it anew.
        ours = member.study != search and not member.loaded
        trial = by_number.get(member.trial) if ours else None
        metrics = TrialRecord.from_frozen(trial).metrics if trial is not None else {}
        broken = values(exp.constraints, metrics) if trial is not None else {}
        why = [
            f"{c.text()} ({_shown(metrics.get(c.metric))})"
            for c in exp.constraints
            if broken.get(c.metric, 0.0) > 0
        ]
        if why:
            out.append(f"{member.label}: breaks {', '.join(why)}")
        else:
            keep.append((want, member))
    return keep, out


def _shown(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def _member_key(trial: FrozenTrial) -> Key:
    """What makes two member trials the same member: source, seed and epochs."""
    record = TrialRecord.from_frozen(trial)
    return (record.member_of, record.seed, record.member_epochs)


def _plan_queue(study: optuna.Study, wanted: set[Key]) -> set[Key]:
    """The members on their way: running under a live driver, or queued (one trial each,
    a re-run of a chain first). Every other queued trial, a copy of such a member or of
    one already trained, or one no longer wanted, is ended unrun (``surplus``), so the
    driver's budget trains each wanted member once."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    kept = {_member_key(t) for t in running}
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for t in sorted(waiting, key=lambda t: (attrs.RETRY_OF not in t.user_attrs, t.number)):
        key = _member_key(t)
        if key in wanted and key not in kept:
            kept.add(key)
        else:
            _end_unrun(study, t)
    return kept


def _end_unrun(study: optuna.Study, waiting: FrozenTrial) -> None:
    """Take ``waiting`` off the queue, failed ``surplus``: never run, not counted toward
    the budget (``recovery.withdraw``; a driver that asked it first runs it)."""
    import supervisor.optuna_internals as internals
    from supervisor.study import recovery

    source, seed, _ = _member_key(waiting)
    error = f"a copy of member search #{source}, seed {seed}: queued or trained already"
    recovery.withdraw(study, internals.trial_id(waiting), error)


def _member(
    trial: FrozenTrial, study: str, label: str, outputs: dict[str, Any], loaded: bool = False
) -> Member:
    value = trial.values[0] if trial.values else None
    return Member(trial.number, study, label, value, outputs, dict(trial.params), loaded)


def queue_missing(
    study: optuna.Study,
    exp: Experiment,
    missing: list[Wanted],
    sources: dict[int, FrozenTrial],
    run_dir: Path | None = None,
) -> None:
    """Queue in the member study each of ``missing`` that is not on its way. Under the
    journal's lock: two ensembles built at once (the two drivers of one run finishing
    together) each planned before the other queued, and queued every member twice.
    A member of its search trial's own seed whose model the search kept (``run_dir``)
    loads it instead of training again (``kept_model``)."""
    from supervisor.study.storage import exclusive

    with exclusive(study):
        given = {number: trained_as(exp, trial) for number, trial in sources.items()}
        keys = {w: (w.source, w.seed, given[w.source]["epochs"]) for w in missing}
        queued = _plan_queue(study, set(keys.values()))
        for want, key in keys.items():
            if key not in queued:
                source = sources[want.source]
                train_as = dict(given[want.source])
                if run_dir is not None and loads_kept(exp, run_dir, source, want):
                    train_as["trained"] = kept_model(exp, run_dir, source)
                study.enqueue_trial(
                    dict(source.params),
                    user_attrs={
                        attrs.SEED: want.seed,
                        attrs.MEMBER_OF: want.source,
                        attrs.MEMBER_EPOCHS: key[2],
                        attrs.TRAIN_AS: train_as,
                    },
                    skip_if_exists=False,
                )


def loads_kept(exp: Experiment, run_dir: Path, source: FrozenTrial, want: Wanted) -> bool:
    """Whether member ``want`` of search trial ``source`` loads the search's kept model."""
    return search_seed(exp, source) == want.seed and kept_model(exp, run_dir, source) is not None


def kept_model(exp: Experiment, run_dir: Path, trial: FrozenTrial) -> dict[str, Any] | None:
    """The model ``keep_models`` kept of search ``trial`` (its file and what the trial
    measured), for a member of the same configuration and seed to load: trained again,
    it would only repeat it (a search without an ``ensemble:`` section kept no
    predictions, only the models). None where the search kept none, or the trial's
    metrics lack an objective; a multi-rank trial trains (its ranks train together)."""
    record = TrialRecord.from_frozen(trial)
    path = rundir.trial_dir(run_dir, trial.number) / rundir.MODEL_FILE
    if exp.ranks > 1 or record.model is None or not path.is_file():
        return None
    if any(name not in record.metrics for name in exp.metric_names):
        return None
    return {"path": str(path.resolve()), "metrics": dict(record.metrics)}


def train_missing(
    exp: Experiment,
    missing: list[Wanted],
    sources: dict[int, FrozenTrial],
    storage_url: str,
    run_dir: Path,
    handle: ClusterHandle,
    display: Any,
) -> Summary:
    """Train ``missing`` members through the driver, in the member study, each as its
    search trial (in ``sources``) was trained."""
    from supervisor.study import recovery
    from supervisor.study.driver import Driver
    from supervisor.study.kept_artifacts import drop_lost
    from supervisor.study.open_study import open_campaign_study

    name = member_study_name(exp.study_name)
    member_exp = replace(
        exp,
        study_name=name,
        sampler="random",  # every trial is queued with its parameters: nothing is sampled
        sampler_options={},
        pruner="none",
        pruner_options={},
        retrain_duplicates=True,  # seeds of one configuration are different members
        # Members are chosen from search trials that keep the constraints; one trained
        # here is judged by them when the ensemble is built (``judged``), not by its
        # driver: each is kept and trained once, whatever it measures.
        constraints=(),
    )
    study = open_campaign_study(member_exp, storage_url)
    # Members a dead driver left running are closed and queued again now, before the plan,
    # so that they are counted as queued (the driver's own recovery then finds none).
    recovered = recovery.recover(study)
    for number in recovered.zombies:  # what they saved before their driver died
        drop_lost(run_dir / rundir.ENSEMBLE_DIR, number)
    if recovered.zombies:
        display.log(
            f"Ensemble: {len(recovered.zombies)} member(s) left running by a dead driver "
            "queued again"
        )
    queue_missing(study, exp, missing, sources, run_dir)
    finished = sum(1 for t in study.get_trials(deepcopy=False) if attrs.counts_toward_budget(t))
    # Members train to their count: no timeout, no early stop of the search (a member
    # repeats a configuration: it would count against patience, or meet the target).
    budget = replace(
        exp.budget, trials=finished + len(missing), timeout=None, target=(), patience=0
    )
    # keep_models: every member trained here is kept (the search's members are kept when
    # among its best), so that the ensemble can be used on new data (Run.ensemble_models).
    keep = budget.trials if exp.keep_models else 0
    member_dir = run_dir / rundir.ENSEMBLE_DIR
    member_dir.mkdir(parents=True, exist_ok=True)
    driver = Driver(
        replace(member_exp, budget=budget, keep_models=keep),
        study,
        handle.client,
        slots=handle.slots,
        threads=handle.threads,
        display=display,
        run_dir=str(member_dir.resolve()),
        resources=handle.resources,
    )
    if handle.watch is not None:  # a batch system refusing every job stops the training
        driver.watch = handle.watch
    summary = driver.run()
    if summary.stopped_by == "cluster":
        raise UserError(str(summary.failure))
    if summary.stopped_by == "disk":  # the members could not be kept: no ensemble (exit 1)
        from supervisor.study.journal_file import StorageError

        raise StorageError(f"{summary.failure}; free space, then build the ensemble again")
    return summary
