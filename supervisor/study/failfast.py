"""Fail fast: a model that cannot train stops the campaign instead of burning its budget.

When the first ``k`` trials of a run (``budget.fail_fast``, default 5; 0 turns it off)
all fail by the model with the same error type and message, nothing is wrong with the
configurations: the code is (a plugin missing a method, a typo, data not found). The
driver then stops, shows that error once and exits 1; the trials stay recorded.

A region of the space that fails is data, not a stop: once any trial of the run has
succeeded the check is off for good, and failures that all share the value of a
parameter that could take others (``optimizer: sgd`` for every one) may be that region,
so they wait until the failures spread beyond it. A training that diverged (NaN or inf)
after finite training steps (``DIVERGED_AFTER_STEPS``, as ``benchmarks_sci.keras_fit``
reports it) or after an epoch with a finite objective shows that data, model and
training run: that configuration is at fault, not the code, so it turns the check off as
a success does. (A learning rate too high for half of its range would otherwise stop a
campaign whose first 5 random trials all drew it: 1 in 32.) A loss that is not finite
from the first step on (NaN inputs) still counts. Only this run's trials are looked at:
a rerun after a fix gives the fixed code its chance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from supervisor.benchmarks.base import DIVERGED_AFTER_STEPS
from supervisor.execution.trial import NON_FINITE

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

DEFAULT = 5


def _single_valued(dist: BaseDistribution) -> bool:
    """A parameter that can take one value only (sharing it says nothing)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices) <= 1
    low, high = getattr(dist, "low", None), getattr(dist, "high", None)
    return low is not None and low == high


def diverged_after_training(
    error_type: str | None, history: Iterable[Mapping[str, float]], objectives: Iterable[str]
) -> bool:
    """Whether a trial's non-finite objective came after finite training steps (the
    benchmark's ``DIVERGED_AFTER_STEPS``) or an epoch in which an objective was finite:
    the training ran, then diverged."""
    if error_type != NON_FINITE:
        return False
    names = list(objectives)
    for epoch in history:
        steps = epoch.get(DIVERGED_AFTER_STEPS, 0.0)
        if (_finite(steps) and steps > 0) or any(_finite(epoch.get(n)) for n in names):
            return True
    return False


def _finite(value: object) -> bool:
    return isinstance(value, float | int) and math.isfinite(value)


class FailFast:
    def __init__(self, k: int = DEFAULT) -> None:
        self.k = max(0, k)
        self.succeeded = False
        self.failures: list[tuple[dict[str, Any], dict[str, BaseDistribution], str]] = []

    def success(self) -> None:
        self.succeeded = True
        self.failures = []

    def failure(
        self, params: dict[str, Any], dists: dict[str, BaseDistribution], error: str
    ) -> str | None:
        """Record a model failure (``error``: "Type: message"); returns the line to stop
        the campaign with, or None."""
        if self.succeeded or self.k == 0:
            return None
        self.failures.append((dict(params), dict(dists), error))
        if len(self.failures) < self.k or len({e for _, _, e in self.failures}) > 1:
            return None
        if self._confined():
            return None
        return f"the first {len(self.failures)} trials all failed with {error}"

    def _confined(self) -> bool:
        """Whether every failure so far shares a value of a parameter that can vary."""
        first, dists, _ = self.failures[0]
        for name, value in first.items():
            if name not in dists or _single_valued(dists[name]):
                continue
            if all(p.get(name, object()) == value for p, _, _ in self.failures[1:]):
                return True
        return False
