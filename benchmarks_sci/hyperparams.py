"""Declarative hyper-parameter tables and their resolver, shared by the benchmarks' models.

A model declares one ``ParamTable``: for every hyper-parameter an ``Int``, a ``Real`` or
a ``Choice``, in the order of its ``HyperParams`` fields. ``ParamTable.resolve`` checks
names and values and raises ValueError naming the offending parameter. A misspelled
name is an error (with a did-you-mean hint) rather than ignored: it would silently
train the default model.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


def did_you_mean(name: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or '' if none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(name: str, value: Any) -> float:
    # numpy scalars and YAML ints alike; bool is an int subclass but never meant as one
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"hyper-parameter {name!r} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Int:
    """A whole number in [low, high] (no upper bound if ``high`` is None); integral
    floats such as 8.0 are accepted and returned as int."""

    low: int = 1
    high: int | None = None

    def check(self, name: str, value: Any) -> int:
        number = _number(name, value)
        too_high = self.high is not None and number > self.high
        if not number.is_integer() or number < self.low or too_high:
            bound = f">= {self.low}" if self.high is None else f"in [{self.low}, {self.high}]"
            raise ValueError(f"hyper-parameter {name!r} must be an integer {bound}, got {value!r}")
        return int(number)


@dataclass(frozen=True)
class Real:
    """A float in the interval from ``low`` to ``high``, each end open or closed."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def check(self, name: str, value: Any) -> float:
        number = _number(name, value)
        above = number > self.low or (not self.low_open and number == self.low)
        below = number < self.high or (not self.high_open and number == self.high)
        if not (above and below):  # NaN is neither
            raise ValueError(f"hyper-parameter {name!r} must be {self.describe()}, got {value!r}")
        return number

    def describe(self) -> str:
        if self.low == 0 and self.low_open and self.high == math.inf:
            return "a positive number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low}, {self.high}{right}"


@dataclass(frozen=True)
class Choice:
    """One of a few named values."""

    values: tuple[str, ...]

    def check(self, name: str, value: Any) -> Any:
        if value not in self.values:
            raise ValueError(
                f"hyper-parameter {name!r} must be one of {', '.join(self.values)}; "
                f"got {value!r}{did_you_mean(str(value), self.values)}"
            )
        return value


Spec = Int | Real | Choice


@dataclass(frozen=True)
class ParamTable:
    """The hyper-parameters of one model: ``owner`` names it in error messages
    (e.g. "the speech decoder"), ``specs`` maps every name to its check."""

    owner: str
    specs: Mapping[str, Spec]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def resolve(
        self,
        params: Mapping[str, Any],
        known: Collection[str] | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """The checked values of ``params`` (defaults are the caller's). ``known``
        restricts the names accepted (default: all); ``owner`` overrides the table's."""
        known = self.names if known is None else tuple(known)
        values: dict[str, Any] = {}
        for name, value in params.items():
            if name not in known:
                raise ValueError(
                    f"unknown hyper-parameter {name!r} for {owner or self.owner}"
                    f"{did_you_mean(name, known)}; known: {', '.join(known)}"
                )
            values[name] = self.specs[name].check(name, value)
        return values


class TableChecked:
    """A benchmark whose hyper-parameters are the ``ParamTable`` ``PARAMS`` of the module
    ``param_table``: the space file's names and values are checked against it
    (``Benchmark.check_param``) before anything runs. The module is imported then, so it
    must not import Keras at the top."""

    param_table: ClassVar[str]

    @classmethod
    def check_param(cls, name: str, value: Any) -> None:
        import importlib

        importlib.import_module(cls.param_table).PARAMS.resolve({name: value})
