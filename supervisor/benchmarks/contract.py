"""The plugin contract, checked on the driver when a space file is validated.

``check_class`` refuses, in one line, what would otherwise fail every trial at run time
(or crash the driver): not a class, not a ``Benchmark``, a required method missing or
uncallable or with the wrong parameters, ``metrics``/``options``/``name`` of the wrong
shape, option defaults that are not finite plain data. ``provides`` tells a feature
whether an optional method is there (``ensemble_problem``: ensembles need ``predict``).
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Mapping
from typing import Any, get_args

from supervisor.benchmarks.base import Benchmark, EnsembleKind, Option, OptionError
from supervisor.benchmarks.values import storable_problem
from supervisor.errors import UserError

# method -> the arguments the supervisor passes (after self)
REQUIRED: dict[str, tuple[str, ...]] = {
    "load_data": ("seed",),
    "build_model": ("params", "seed"),
    "fit": ("model", "data", "params", "epochs", "report"),
}
# method -> (its arguments, what needs it)
OPTIONAL: dict[str, tuple[tuple[str, ...], str]] = {
    "predict": (("model", "x"), "ensembles and the latency_ms metric"),
    "save_data": (("data", "path"), "exporting a data set"),
    "count_params": (("model",), "the n_params metric"),
    "ensemble_outputs": (("model", "data"), "ensembles"),
    "artifacts": (("model", "data", "params"), "per-trial arrays"),
    "latency_inputs": (("model", "data", "n"), "the latency_ms metric"),
    "model_arrays": (("model",), "keep_models"),
    "load_model_arrays": (("model", "arrays"), "keep_models"),
    "__init__": (("options",), "creating the benchmark"),
}
FLAGS = ("supports_ranks", "checkpoints")
MAX_NAME = 128


class PluginError(UserError):
    """A benchmark that cannot be loaded or breaks the contract: one line, exit 2."""


def provides(cls: type, method: str) -> bool:
    """Whether ``cls`` implements the optional ``method`` itself (not the base's default)."""
    return getattr(cls, method, None) is not getattr(Benchmark, method, None)


def ensemble_problem(cls: type[Benchmark]) -> str | None:
    """Why a deep ensemble of ``cls`` cannot be built, or None."""
    if cls.ensemble_kind is None:
        return f"benchmark {cls.name!r} does not support ensembles (it sets no ensemble_kind)"
    if not provides(cls, "predict") and not provides(cls, "ensemble_outputs"):
        return f"benchmark {cls.name!r} has no predict() method, which ensembles need"
    if cls.ensemble_kind == "sequence":  # members' reads are decoded and scored by these
        for method in ("decode", "read_identity"):
            if not callable(getattr(cls, method, None)):
                return f"benchmark {cls.name!r} has no {method}(), which sequence ensembles need"
    return None


def check_class(obj: object, spec: str) -> type[Benchmark]:
    """``obj`` (what ``spec`` names) as a Benchmark class; PluginError if it is not one."""
    problem = _problem(obj)
    if problem:
        raise PluginError(f"{spec}: {problem}")
    assert isinstance(obj, type) and issubclass(obj, Benchmark)
    return obj


def _problem(obj: object) -> str | None:
    if not isinstance(obj, type):
        return f"not a Benchmark class ({_what(obj)})"
    if not issubclass(obj, Benchmark):
        return (
            f"not a Benchmark class ({obj.__name__} is no subclass of"
            " supervisor.benchmarks.Benchmark)"
        )
    missing = [m for m in REQUIRED if m in getattr(obj, "__abstractmethods__", ())]
    if missing:
        return f"does not implement {', '.join(missing)} (required: {', '.join(REQUIRED)})"
    for method, args in REQUIRED.items():
        found = _method_problem(obj, method, args)
        if found:
            return found
    for method, (args, _) in OPTIONAL.items():
        if provides(obj, method):
            found = _method_problem(obj, method, args)
            if found:
                return found
    return _attributes_problem(obj)


def _what(obj: object) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, types.ModuleType):
        return "a module"
    if isinstance(obj, Benchmark):
        return f"an instance of {type(obj).__name__}"
    if inspect.isroutine(obj):
        return "a function"
    return f"a {type(obj).__name__} value"


def _method_problem(cls: type, method: str, args: tuple[str, ...]) -> str | None:
    raw = inspect.getattr_static(cls, method, None)
    found = getattr(cls, method, None)
    if not callable(found):
        return f"{method} must be a method, got {_what(found)}"
    try:
        signature = inspect.signature(found)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to compare
        return None
    # A function looked up on the class still takes self; a static or class method not.
    bound = isinstance(raw, staticmethod | classmethod) or not inspect.isfunction(found)
    try:
        signature.bind(*([] if bound else [cls]), *args)
    except TypeError:
        return f"{method}() must take ({', '.join(args)}), but its signature is {signature}"
    return None


def _attributes_problem(cls: type[Benchmark]) -> str | None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        return (
            f"'name' must be a non-empty string of at most {MAX_NAME} characters,"
            f" got {_shown(name)}"
        )
    problem = _metrics_problem(getattr(cls, "metrics", None)) or _options_problem(cls)
    if problem:
        return problem
    for flag in FLAGS:
        if not isinstance(getattr(cls, flag), bool):
            return f"'{flag}' must be true or false, got {_shown(getattr(cls, flag))}"
    kind = cls.ensemble_kind
    if kind is not None and kind not in get_args(EnsembleKind):
        kinds = ", ".join(get_args(EnsembleKind))
        return f"'ensemble_kind' must be None or one of {kinds}, got {_shown(kind)}"
    for attr in ("tiny_options", "tiny_params"):
        if not isinstance(getattr(cls, attr), Mapping):
            return f"'{attr}' must be a mapping, got {_shown(getattr(cls, attr))}"
    try:
        cls.validate_options(cls.tiny_options)
    except OptionError as exc:
        return f"tiny_options.{exc.key}: {exc.message}"
    return None


def _metrics_problem(metrics: Any) -> str | None:
    if not isinstance(metrics, Mapping) or not metrics:
        return (
            "'metrics' must be a non-empty mapping of metric -> minimize/maximize,"
            f" got {_shown(metrics)}"
        )
    for metric, direction in metrics.items():
        if not isinstance(metric, str) or not metric.strip():
            return f"'metrics' names must be non-empty strings, got {_shown(metric)}"
        if direction not in ("minimize", "maximize"):
            return f"metrics.{metric}: expected minimize or maximize, got {_shown(direction)}"
    return None


def _options_problem(cls: type[Benchmark]) -> str | None:
    if "default_options" in dir(cls) and cls.options is Benchmark.options:
        return "has 'default_options'; the attribute is 'options' (a mapping of name -> Option)"
    options = cls.options
    if not isinstance(options, Mapping):
        return f"'options' must be a mapping of name -> Option, got {_shown(options)}"
    for key, option in options.items():
        if not isinstance(key, str) or not key.isidentifier():
            return f"'options' names must be identifiers, got {_shown(key)}"
        if not isinstance(option, Option):
            return f"options.{key}: expected an Option(default, help), got {_shown(option)}"
        found = storable_problem(option.default)
        if found or option.default is None or isinstance(option.default, dict):
            why = (
                found[1]
                if found
                else "None has no type to check values against; use '' for an unset text"
                if option.default is None
                else "a mapping cannot be given as an option"
            )
            return f"options.{key}: bad default ({why})"
        for bound in (option.low, option.high):
            if bound is not None and (
                isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or not math.isfinite(bound)
            ):
                return f"options.{key}: low/high must be finite numbers, got {_shown(bound)}"
        try:
            option.check(key, option.default)
        except OptionError as exc:
            return f"options.{key}: its default is not valid: {exc.message}"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
