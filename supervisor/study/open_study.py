"""Open (or create) a campaign's Optuna study with the sampler of its space file.

A study already stored under the name must be of the same benchmark and objectives (on
a shared database, the name may be another user's campaign); the resolved
experiment is stored with it (``attrs.CONFIG``) so that later commands read it back.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from supervisor.errors import UserError
from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from supervisor.config.experiment import Experiment

    Checked = tuple[BaseStorage, optuna.Study | None]


def checked_study(exp: Experiment, storage_url: str, *, read_only: bool = False) -> Checked:
    """The storage and the study stored under the campaign's name (None: none yet),
    refused where this space cannot resume it: other directions, another campaign's
    study, parameters or constraints its trials do not hold alike. Writes nothing, so
    ``--dry-run`` and a search before it starts its cluster find what the search would."""
    import optuna

    from supervisor.study.feasibility import changed as constraints_changed
    from supervisor.study.space_change import incompatible, unmodelled
    from supervisor.study.storage import open_storage, redact

    storage = open_storage(storage_url, read_only=read_only)
    try:
        existing = optuna.load_study(study_name=exp.study_name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        old = [d.name.lower() for d in existing.directions]
        if old != exp.directions:
            raise UserError(
                f"study {exp.study_name!r} in {redact(storage_url)} has directions {old}, "
                f"the space file asks for {exp.directions}; use another study name (--study)"
            )
        _same_campaign(existing, exp, redact(storage_url))
        changed = incompatible(existing, exp.params) or unmodelled(
            existing, exp.params, exp.sampler
        )
        if changed:
            raise UserError(f"{exp.file}: params.{changed[0]}: {changed[1]}")
        other = constraints_changed(existing, exp)
        if other:
            raise UserError(f"{exp.file}: {other}")
    return storage, existing


def open_campaign_study(
    exp: Experiment,
    storage_url: str,
    notes: list[str] | None = None,
    checked: Checked | None = None,
) -> optuna.Study:
    """``notes``, where given, gets a line for a resume whose space trains otherwise than
    the study's trials were trained (``resume_changes``); ``checked``: what
    ``checked_study`` found (else it is called)."""
    import optuna

    from supervisor.config.samplers import make_sampler
    from supervisor.study.storage import CampaignJournalStorage

    storage, existing = checked or checked_study(exp, storage_url)
    sampler = make_sampler(exp.sampler, exp.sampler_options, exp.seed, grid=exp.grid())
    if existing is not None and notes is not None:
        notes.extend(resume_changes(existing, exp))
    study = optuna.create_study(
        study_name=exp.study_name,
        storage=storage,
        sampler=sampler,
        directions=exp.directions,
        load_if_exists=True,
    )
    with warnings.catch_warnings():  # experimental in Optuna; optuna-dashboard shows them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(exp.metric_names)
    study.set_user_attr(attrs.CONFIG, exp.to_dict())
    study.set_user_attr(attrs.OBJECTIVES, exp.metric_names)
    study.set_user_attr(attrs.BENCHMARK, exp.benchmark)
    if isinstance(storage, CampaignJournalStorage):  # the checks passed: the campaign goes on
        storage.save_snapshot()
    return study


def _same_campaign(study: optuna.Study, exp: Experiment, shown: str) -> None:
    """Refuse a study stored under the name by another benchmark or for other objectives:
    another campaign (on a shared database, often another user's), whose trials would
    count toward this budget and whose record this run would overwrite."""
    stored = study.user_attrs
    benchmark = stored.get(attrs.BENCHMARK)
    if isinstance(benchmark, str) and benchmark not in (exp.benchmark, exp.benchmark_target):
        what = f"benchmark {benchmark!r}, the space file runs {exp.benchmark!r}"
    elif (metrics := stored.get(attrs.OBJECTIVES)) and list(metrics) != exp.metric_names:
        what = f"objectives {list(metrics)}, the space file asks for {exp.metric_names}"
    else:
        return
    trials = len(study.get_trials(deepcopy=False))
    raise UserError(
        f"study {exp.study_name!r} in {shown} is another campaign ({trials} trial(s) of {what});"
        " nothing was changed: use another study name (--study)"
    )


def resume_changes(study: optuna.Study, exp: Experiment) -> list[str]:
    """A line where this resume trains otherwise than the study's trials were trained (its
    epochs, fixed values or benchmark options, as its last start stored them): the study
    then holds values that do not compare, and a configuration trained before is told its
    earlier value, not trained again. Allowed (each trial keeps what it was given, for
    ``rerun`` and ensembles), but said: it changed the campaign without a word."""
    from optuna.trial import TrialState

    from supervisor.study.warm_start import differences

    found = differences(exp, study.user_attrs.get(attrs.CONFIG) or {})
    trained = any(
        attrs.WARM_START not in t.user_attrs
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    )
    if not found or not trained:
        return []
    return [
        f"note: this run trains otherwise than the study's earlier trials ({'; '.join(found)}):"
        " their values do not compare with its own, and a configuration they measured is not"
        " trained again; start a new study (--study NAME) with warm_start: "
        f"{exp.study_name} to compare like with like"
    ]
