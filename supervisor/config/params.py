"""Declared hyper-parameters: their Optuna distributions and conditional activation.

The driver samples a trial's parameters with ``suggest`` on an asked trial, in an order
where every parent comes before the parameters conditioned on it; inactive parameters
are simply never suggested, which is how Optuna represents conditional spaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

ParamKind = Literal["float", "int", "categorical"]
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: ParamKind
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Scalar, ...] = ()
    # Active only when every named parent took one of the listed values.
    when: dict[str, tuple[Scalar, ...]] = field(default_factory=dict)

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def count(self) -> int | None:
        """How many values a finite parameter takes (without listing them), None if
        continuous."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.step is None and self.kind == "float":
            return None
        assert self.low is not None and self.high is not None
        return round((self.high - self.low) / (self.step or 1)) + 1

    def grid_values(self) -> list[Scalar] | None:
        """Every value of a finite parameter (for grid search), or None if continuous."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None and self.kind == "float":
            return None
        assert self.low is not None and self.high is not None
        step = self.step or 1
        count = round((self.high - self.low) / step) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [float(v) for v in values]

    def describe(self) -> str:
        if self.kind == "categorical":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = f"{self.kind} in [{self.low}, {self.high}]"
            if self.log:
                text += " log"
            if self.step is not None:
                text += f" step {self.step}"
        if self.when:
            conds = " and ".join(
                f"{k} in {list(v)}" if len(v) > 1 else f"{k} = {v[0]!r}"
                for k, v in self.when.items()
            )
            text += f"  (when {conds})"
        return text


def contains(spec: ParamSpec, value: Any) -> bool:
    """Whether ``value`` is one ``spec`` could propose (its range, step, log, choices)."""
    if spec.kind == "categorical":
        # 1, 1.0 and True compare equal in Python: match the type as well.
        return any(type(c) is type(value) and c == value for c in spec.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if spec.kind == "int" and not float(value).is_integer():
        return False
    assert spec.low is not None and spec.high is not None
    if not spec.low <= value <= spec.high:
        return False
    if spec.step:
        steps = (value - spec.low) / spec.step
        return math.isclose(steps, round(steps), abs_tol=1e-9)
    return True


def is_active(spec: ParamSpec, values: dict[str, Any]) -> bool:
    return all(parent in values and values[parent] in ok for parent, ok in spec.when.items())


def suggest(trial: optuna.Trial, params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Sample the active parameters of ``trial``; ``params`` is in dependency order."""
    values: dict[str, Any] = {}
    for spec in params:
        if is_active(spec, values):
            values[spec.name] = _suggest_one(trial, spec)
    return values


def _suggest_one(trial: optuna.Trial, spec: ParamSpec) -> Any:
    if spec.kind == "categorical":
        return trial.suggest_categorical(spec.name, list(spec.choices))
    assert spec.low is not None and spec.high is not None
    if spec.kind == "int":
        return trial.suggest_int(
            spec.name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log
        )
    return trial.suggest_float(
        spec.name, float(spec.low), float(spec.high), step=spec.step, log=spec.log
    )
