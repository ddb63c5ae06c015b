"""Pruner names of the space file -> Optuna pruners. Optuna decides; the driver asks it.

The ``pruner:`` section names one of ``PRUNERS`` with the options of its Optuna class
(``patient`` takes ``wrapped_pruner``: another pruner by name, or ``{name, options}``).
A file is checked by building the pruner once while it is validated, so a wrong name,
option or value is reported then, in one line, not when the first trial reports.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.config.optuna_options import option_problem
from supervisor.errors import did_you_mean

if TYPE_CHECKING:
    import optuna

# name -> attribute of optuna.pruners
PRUNERS: dict[str, str] = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",  # asynchronous: this is ASHA
    "asha": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "threshold": "ThresholdPruner",
    "patient": "PatientPruner",
    "wilcoxon": "WilcoxonPruner",
}
WRAPPED = "wrapped_pruner"


class PrunerError(ValueError):
    """A problem with the pruner section; ``key`` is the option at fault (None: the name)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def make_pruner(name: str, options: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """The Optuna pruner; raises PrunerError for a bad name, option or value."""
    import optuna

    if name not in PRUNERS:
        known = ", ".join(PRUNERS)
        raise PrunerError(
            None, f"unknown pruner {name!r}{did_you_mean(name, PRUNERS)}; known: {known}"
        )
    cls = getattr(optuna.pruners, PRUNERS[name])
    accepted = set(inspect.signature(cls).parameters)
    kwargs = dict(options)
    for key in kwargs:
        if key not in accepted:
            hint = (
                did_you_mean(key, accepted)
                or f"; it takes {', '.join(sorted(accepted)) or 'none'}"
            )
            raise PrunerError(key, f"{PRUNERS[name]} has no option {key!r}{hint}")
        problem = None if key == WRAPPED else option_problem(cls, key, kwargs[key])
        if problem:
            raise PrunerError(key, problem)
    if name == "patient" and kwargs.get(WRAPPED) is not None:
        kwargs[WRAPPED] = _wrapped(kwargs[WRAPPED])
    try:
        with warnings.catch_warnings():  # "experimental" (patient, wilcoxon): nothing to do
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            pruner: optuna.pruners.BasePruner = cls(**kwargs)
    except (TypeError, ValueError) as exc:  # Optuna's own checks: ranges, missing options
        culprit = next((k for k in kwargs if k in str(exc)), None)
        raise PrunerError(culprit, f"{PRUNERS[name]}: {exc}") from None
    return pruner


def _wrapped(value: Any) -> optuna.pruners.BasePruner:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or set(value) - {"name", "options"} or "name" not in value:
        raise PrunerError(WRAPPED, "expected a pruner name or {name: ..., options: {...}}")
    options = value.get("options") or {}
    if not isinstance(options, dict):
        raise PrunerError(WRAPPED, "its options must be a mapping")
    try:
        return make_pruner(str(value["name"]), options)
    except PrunerError as exc:
        raise PrunerError(WRAPPED, exc.message) from None
