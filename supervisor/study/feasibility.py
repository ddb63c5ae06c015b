"""Outcome constraints in the study: which complete trials keep the space file's bounds.

Each complete trial gets one Optuna constraint value per constrained metric
(``Trial.set_constraint``, Optuna's ``constraints:<metric>`` system attribute; <= 0 keeps
the bound), written from its measured metrics before it is told, so the sampler's
``after_trial`` and every later proposal see it: Optuna's TPE, GP and NSGA-II/III read
them from the trials, no ``constraints_func`` needed (deprecated since Optuna 5.0). A
duplicate gets its twin's values, a warm-start trial values computed from its metrics.
Pruned and failed trials get none (they have no final metrics; no sampler reads
constraints of those as results).

Everything that picks "the best" reads the values back through Optuna's
``FrozenTrial.constraints`` (``feasible``), as Optuna's own ``best_trial`` and
``best_trials`` do: the reports, ``status``, ``export``, the API, ``budget.target`` and
``patience`` and the ensemble's pool. A study whose constraints changed cannot keep its
trials' verdicts: a resume with other constraints is refused (``changed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals
from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.config.constraints import Constraint
    from supervisor.config.experiment import Experiment


def values(constraints: Sequence[Constraint], metrics: Any) -> dict[str, float]:
    """Each constrained metric -> its Optuna constraint value for these ``metrics``."""
    found = metrics if isinstance(metrics, Mapping) else {}
    return {c.metric: c.violation(found.get(c.metric)) for c in constraints}


def system_attrs(constraints: Sequence[Constraint], metrics: Any) -> dict[str, float]:
    """The same as the system attributes of a trial made with ``create_trial``."""
    prefix = internals.CONSTRAINTS_KEY + ":"
    return {prefix + k: v for k, v in values(constraints, metrics).items()}


def record(trial: optuna.Trial, constraints: Sequence[Constraint]) -> bool:
    """Set the constraint values of a running trial from its stored metrics (before it is
    told); returns whether it keeps every bound."""
    found = values(constraints, internals.user_attrs(trial).get(attrs.METRICS))
    for metric, value in found.items():
        trial.set_constraint(metric, value)
    return all(v <= 0 for v in found.values())


def copy(study: optuna.Study, trial: optuna.Trial, earlier: int) -> None:
    """Give a duplicate the constraint values of trial ``earlier``, whose result it is told
    with (a complete trial without them would count as feasible)."""
    storage = internals.study_storage(study)
    tid = storage.get_trial_id_from_study_id_trial_number(internals.study_id(study), earlier)
    for metric, value in storage.get_trial(tid).constraints.items():
        trial.set_constraint(metric, value)


def violations(trial: FrozenTrial) -> dict[str, float]:
    """The trial's constraint values that break a bound (> 0), by metric."""
    return {k: v for k, v in trial.constraints.items() if v > 0}


def feasible(trial: FrozenTrial) -> bool:
    """Optuna's rule: every constraint value <= 0 (a trial without any is feasible)."""
    return all(v <= 0 for v in trial.constraints.values())


def changed(study: optuna.Study, exp: Experiment) -> str | None:
    """Why ``exp``'s constraints cannot resume ``study``, or None: its complete trials
    hold verdicts on other bounds (the stored experiment's; none before the key)."""
    from optuna.trial import TrialState

    stored = study.user_attrs.get(attrs.CONFIG)
    old = (stored.get("constraints") or {}) if isinstance(stored, dict) else {}
    new = {c.metric: c.to_dict() for c in exp.constraints}
    if old == new or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None

    def shown(bounds: Mapping[str, Any]) -> str:
        from supervisor.config.constraints import stored

        return ", ".join(c.text() for c in stored(bounds)) or "none"

    return (
        f"constraints: its trials were judged by {shown(old)}, the space file has"
        f" {shown(new)}; keep them, or start a new study (--study NAME) that learns from"
        " this one (warm_start)"
    )
