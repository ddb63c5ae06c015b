"""The ``method`` hyper-parameter: the seed's ConvNet or one of its classical baselines.

``method`` (default ``cnn``) picks the model; every other hyper-parameter belongs to
one or more methods (``model.PARAM_NAMES`` to the ConvNet, ``baselines.APPLIES`` to the
baselines), and passing one to a method it does not belong to is an error rather than
silently ignored: in a search space over methods, make it conditional, e.g.
``when: {method: svm}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks_sci.hyperparams import Choice, ParamTable
from benchmarks_sci.weather.baselines import APPLIES, BASELINES, BaselineParams, resolve_baseline
from benchmarks_sci.weather.baselines import PARAMS as BASELINE_PARAMS
from benchmarks_sci.weather.model import ARCHITECTURES, PARAM_NAMES, HyperParams, resolve_params
from benchmarks_sci.weather.model import PARAMS as CNN_PARAMS

METHODS: tuple[str, ...] = ("cnn", *BASELINES)


# Every hyper-parameter of every method (the benchmark's check of a space file, which
# knows no method yet: a name no method uses, or a value out of its range).
PARAMS = ParamTable(
    "the weather benchmark",
    {"method": Choice(METHODS), **CNN_PARAMS.specs, **BASELINE_PARAMS.specs},
)


def method_of(params: Mapping[str, Any]) -> str:
    """The checked ``method`` of ``params`` (``cnn`` if absent)."""
    return str(Choice(METHODS).check("method", params.get("method", "cnn")))


def owners(name: str) -> tuple[str, ...]:
    """The methods that use hyper-parameter ``name`` (none if it is unknown)."""
    return (("cnn",) if name in PARAM_NAMES else ()) + APPLIES.get(name, ())


def resolve(params: Mapping[str, Any], task: str) -> HyperParams | BaselineParams:
    """The checked hyper-parameters of ``params``' method on ``task``; ValueError naming
    the offending parameter otherwise."""
    method = method_of(params)
    rest = {k: v for k, v in params.items() if k != "method"}
    for name in rest:
        used_by = owners(name)
        if used_by and method not in used_by:
            raise ValueError(
                f"hyper-parameter {name!r} applies to method {', '.join(used_by)}, "
                f"not {method!r}: make it conditional on the method in the search space"
            )
    if method == "cnn":
        return resolve_params(rest, task)
    return resolve_baseline(method, rest, ARCHITECTURES[task].input_shape)
