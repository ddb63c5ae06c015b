"""Option values of an Optuna sampler or pruner, checked while the space file is validated.

Optuna's constructors check some values (``population_size: 1``, ``qmc_type: bogus``)
and store others unchecked until the first trial is asked (``n_startup_trials: abc``
fails every trial; ``gamma: 0.5`` is called as a function). So a value is first checked
against the constructor's annotation (``int``, ``float | None``, ``Callable[...]``: a
Python object no YAML file can give), then the object is built once with it.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any

from supervisor.benchmarks.values import storable_problem

# Annotation names a YAML value can satisfy, and how.
_PLAIN: dict[str, Any] = {
    "None": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "str": lambda v: isinstance(v, str),
    "Any": lambda v: True,
    "object": lambda v: True,
}
_SEQUENCES = ("list", "Sequence", "tuple", "List", "Tuple")
_MAPPINGS = ("dict", "Mapping", "Dict")


def option_problem(cls: type, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the keyword ``key`` of ``cls``, or None."""
    found = storable_problem(value)
    if found:
        return found[1]
    parameter = inspect.signature(cls).parameters.get(key)
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return None
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not text or accepts(text, value) is not False:
        return None
    if all(_python_only(alt) or alt == "None" for alt in _split(text, "|")):
        return (
            f"{cls.__name__} takes a Python object for {key!r} ({text});"
            " a space file cannot give one"
        )
    return f"{cls.__name__} expects {text} for {key!r}, got {_shown(value)}"


def build_problem(
    cls: type, options: Mapping[str, Any], **fixed: Any
) -> tuple[str | None, str] | None:
    """(the option at fault or None, Optuna's complaint) when ``cls(**fixed, **options)``
    refuses its arguments, else None."""
    for key, value in options.items():
        problem = option_problem(cls, key, value)
        if problem:
            return key, problem
    try:
        with warnings.catch_warnings():  # "experimental" and the like: nothing to act on
            warnings.simplefilter("ignore")
            cls(**fixed, **options)
    except (TypeError, ValueError, AssertionError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        culprit = next((k for k in options if k in text), None)
        return culprit, f"{cls.__name__}: {text[:300]}"
    return None


def accepts(annotation: str, value: Any) -> bool | None:
    """Whether ``value`` fits the annotation text; None where it cannot tell."""
    verdicts = [_accepts_one(alt, value) for alt in _split(annotation, "|")]
    if any(v is True for v in verdicts):
        return True
    return None if any(v is None for v in verdicts) else False


def _accepts_one(annotation: str, value: Any) -> bool | None:
    head, _, rest = annotation.partition("[")
    head = head.strip().rpartition(".")[2]
    args = _split(rest[:-1], ",") if rest.endswith("]") else []
    if head in _PLAIN:
        return bool(_PLAIN[head](value))
    if head == "Optional" and args:
        return value is None or accepts(args[0], value)
    if head == "Union" and args:
        return accepts(" | ".join(args), value)
    if head in _SEQUENCES:
        if not isinstance(value, list):
            return False
        inner = args[0] if args and (head != "tuple" or args[-1] == "...") else None
        if inner is None:
            return None if args else True
        verdicts = [accepts(inner, item) for item in value]
        return False if False in verdicts else (None if None in verdicts else True)
    if head in _MAPPINGS:
        return isinstance(value, dict)
    if head == "Literal":
        return None  # rare in Optuna's signatures; its constructor checks the value
    if _python_only(annotation):
        return False
    return None


def _python_only(annotation: str) -> bool:
    """An annotation only a Python object satisfies: a callable or a class of a library."""
    head = annotation.partition("[")[0].strip().rpartition(".")[2]
    if head in _PLAIN or head in _SEQUENCES or head in _MAPPINGS:
        return False
    if head in ("Optional", "Union", "Literal"):
        return False
    return head in ("Callable", "ndarray") or head[:1].isupper()


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _shown(value: Any) -> str:
    text = repr(value)
    kind = "text" if isinstance(value, str) else type(value).__name__
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"
