"""The ``constraints:`` section of a space file: bounds a trial's measured metrics must keep
for it to count (outcome constraints, as Ax and Optuna call them).

    constraints:
      latency_ms: {max: 5}               # any metric of the benchmark, or a cost metric
      val_accuracy: {min: 0.8}
      peak_memory_mb: {min: 100, max: 4000}

A complete trial outside a bound is infeasible: it is recorded (its values are data) but
is never the best trial, never on the Pareto front, never reaches ``budget.target`` or
resets ``budget.patience``, and never joins an ensemble. How the driver tells the
sampler: ``supervisor.study.feasibility``. Samplers that model results (tpe, gp, nsgaii,
nsgaiii) steer away from infeasible regions; those that learn from no result (random,
qmc, grid, bruteforce) are accepted and said not to steer; cmaes and turbo, which learn
from results but ignore constraints (they would spend the budget near an infeasible
optimum), are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath
from supervisor.errors import did_you_mean

__all__ = [
    "STEERED",
    "Constraint",
    "check_sampler",
    "read_constraints",
    "sampler_note",
    "stored",
]

KEYS = ("min", "max")
# Samplers that model constraints (Optuna reads them from each complete trial).
STEERED = frozenset({"tpe", "gp", "nsgaii", "nsgaiii"})
# Samplers whose proposals learn from no result: the constraints select, not steer.
UNSTEERED = frozenset({"random", "qmc", "grid", "bruteforce"})


@dataclass(frozen=True)
class Constraint:
    metric: str
    low: float | None = None  # ``min``: the metric must be >= low
    high: float | None = None  # ``max``: the metric must be <= high

    def violation(self, value: Any) -> float:
        """Optuna's constraint value: <= 0 when ``value`` keeps the bounds, else how far
        out it is. A metric the trial did not measure (or not finite) cannot be shown to
        keep them: infeasible, by the width of the bound (finite: Optuna's GP models it)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = math.nan
        if not math.isfinite(value):
            bound = self.high if self.high is not None else self.low
            return max(1.0, abs(bound or 0.0))
        over = value - self.high if self.high is not None else -math.inf
        under = self.low - value if self.low is not None else -math.inf
        return float(max(over, under))

    def text(self) -> str:
        """``0.8 <= val_accuracy``, ``latency_ms <= 5``, ``100 <= m <= 4000``."""
        low = f"{self.low:g} <= " if self.low is not None else ""
        high = f" <= {self.high:g}" if self.high is not None else ""
        return f"{low}{self.metric}{high}"

    def to_dict(self) -> dict[str, float]:
        bounds = {"min": self.low, "max": self.high}
        return {k: v for k, v in bounds.items() if v is not None}


def stored(value: Any) -> tuple[Constraint, ...]:
    """The constraints of a stored experiment (``Experiment.to_dict``); entries that are
    no mapping of numeric bounds (another version's, a user's script's) are skipped."""

    def bound(bounds: Mapping[str, Any], key: str) -> float | None:
        v = bounds.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    found = value.items() if isinstance(value, Mapping) else ()
    return tuple(
        Constraint(str(m), bound(b, "min"), bound(b, "max"))
        for m, b in found
        if isinstance(b, Mapping) and (bound(b, "min") is not None or bound(b, "max") is not None)
    )


def read_constraints(
    reader: Reader, value: Any, known: Mapping[str, str], bench: str, predicts: bool
) -> tuple[Constraint, ...]:
    """``known``: the metrics a trial records (the benchmark's and the cost metrics);
    ``predicts``: whether the benchmark has predict() (latency_ms is measured with it)."""
    path: KeyPath = ("constraints",)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise reader.err(
            path, f"expected a mapping of metric -> {{min, max}}, got {kind_of(value)}"
        )
    if not value:
        raise reader.err(path, "expected at least one metric -> {min, max}")
    out = []
    for metric, bounds in value.items():
        here = (*path, metric)
        if not isinstance(metric, str) or metric not in known:
            raise reader.err(
                here,
                f"benchmark {bench!r} has no metric {metric!r}{did_you_mean(str(metric), known)};"
                f" known: {', '.join(known)}",
            )
        if metric == "latency_ms" and not predicts:
            raise reader.err(
                here,
                f"latency_ms is measured with predict(), which benchmark {bench!r}"
                " does not implement",
            )
        spec = reader.mapping(bounds, here, KEYS)
        if not spec:
            raise reader.err(here, "expected min, max or both")
        low, high = (
            None if spec.get(k) is None else float(reader.number(spec[k], (*here, k)))
            for k in KEYS
        )
        if low is None and high is None:
            raise reader.err(here, "expected a number for min, max or both")
        if low is not None and high is not None and low > high:
            raise reader.err(here, f"min {low:g} is above max {high:g}: no trial could keep it")
        out.append(Constraint(metric, low, high))
    return tuple(out)


def check_sampler(reader: Reader, sampler: str, constraints: tuple[Constraint, ...]) -> None:
    """Refuse a sampler that learns from results but cannot steer by constraints."""
    if constraints and sampler not in STEERED | UNSTEERED:
        raise reader.err(
            ("sampler",),
            f"sampler {sampler!r} ignores constraints (it would spend the budget near"
            f" optima that break them); use {', '.join(sorted(STEERED))}, or one that"
            " learns from no result (random, qmc, grid)",
        )


def sampler_note(sampler: str, constraints: tuple[Constraint, ...]) -> str | None:
    """What to say of a sampler that is given constraints but does not steer by them."""
    if not constraints or sampler in STEERED:
        return None
    return (
        f"the {sampler} sampler does not steer by constraints (it learns from no result);"
        " they decide which trials count"
    )
