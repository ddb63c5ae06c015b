"""The ``params:`` section of a space file -> ``ParamSpec``s in dependency order.

Besides the shape of each parameter, it refuses what Optuna would accept and then get
wrong: choices Optuna stores as one value (``[1, 1.0, true]``: it finds a choice with
``==``), a YAML 1.1 boolean among text choices (``[NO, SE, DK]`` is ``[False, 'SE',
'DK']``), a condition on a value its parent never takes (the child would never be
searched), a float step so small that the parameter is continuous, and a grid too large
to build.
"""

from __future__ import annotations

import math
import re
from typing import Any

from supervisor.config.params import ParamKind, ParamSpec, Scalar
from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath
from supervisor.errors import did_you_mean

PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "when")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Values of one float parameter with a step: beyond this the step no longer means
# anything (the divisibility check's tolerance exceeds it); leave the float continuous.
MAX_STEPS = 10**9
# Points of a grid search: Optuna's GridSampler lists every one of them in memory.
MAX_GRID = 1_000_000


def read_params(reader: Reader, value: Any) -> tuple[ParamSpec, ...]:
    path: KeyPath = ("params",)
    if not isinstance(value, dict):
        raise reader.err(path, f"expected a mapping of parameter names, got {kind_of(value)}")
    specs: dict[str, ParamSpec] = {}
    for name, raw in value.items():
        here = (*path, name)
        if not PARAM_NAME.fullmatch(name):
            raise reader.err(here, "parameter names are identifiers (letters, digits, _)")
        specs[name] = _param(reader, name, raw, here)
    for name, spec in specs.items():
        for parent, allowed in spec.when.items():
            where = ("params", name, "when", parent)
            if parent == name:
                raise reader.err(where, "a parameter cannot depend on itself")
            if parent not in specs:
                raise reader.err(
                    where, f"unknown parameter {parent!r}{did_you_mean(parent, specs)}"
                )
            parent_spec = specs[parent]
            if parent_spec.kind == "float":
                raise reader.err(where, "conditions need a categorical or int parent")
            for i, v in enumerate(allowed):
                problem = _condition_problem(parent_spec, v)
                if problem:
                    spelled = reader.src.spelled.get((*where, i)) or reader.src.spelled.get(where)
                    hint = f" (YAML reads {spelled} as {v}: quote it)" if spelled else ""
                    raise reader.err(where, problem + hint)
    return _ordered(reader, specs)


def grid_problem(params: tuple[ParamSpec, ...]) -> tuple[KeyPath, str] | None:
    """Why these parameters make no grid to search (continuous, or too many points)."""
    points = 1
    for p in params:
        count = p.count()
        if count is None:
            return ("params", p.name), "grid search needs a finite parameter: give a float a step"
        points *= count
        if points > MAX_GRID:
            return (
                ("params", p.name),
                f"the grid has more than {MAX_GRID:,} points (Optuna lists every one in"
                " memory); use fewer values, or another sampler",
            )
    return None


def _condition_problem(parent: ParamSpec, value: Any) -> str | None:
    if parent.kind == "categorical":
        if value in parent.choices:
            return None
        return f"{value!r} is not one of {list(parent.choices)}"
    assert parent.low is not None and parent.high is not None
    step = int(parent.step or 1)
    values = f"[{parent.low}, {parent.high}]" + (f" step {step}" if step > 1 else "")
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{value!r} is not a value of the int parameter (integers in {values})"
    if not parent.low <= value <= parent.high or (value - parent.low) % step:
        return f"{value} is not a value of the int parameter (integers in {values})"
    return None


def _ordered(reader: Reader, specs: dict[str, ParamSpec]) -> tuple[ParamSpec, ...]:
    """Parents before children (declaration order otherwise); cycles are errors. A loop,
    not recursion: a chain of 1,500 conditions is a valid file."""
    done: dict[str, ParamSpec] = {}
    for root in specs:
        visiting, on_path = [root], {root}
        pending = [iter(specs[root].when)]
        while pending:
            parent = next(pending[-1], None)
            if parent is None:
                name = visiting.pop()
                on_path.discard(name)
                pending.pop()
                done.setdefault(name, specs[name])
            elif parent in on_path:
                raise reader.err(("params", parent, "when"), _cycle(visiting, parent))
            elif parent not in done:
                visiting.append(parent)
                on_path.add(parent)
                pending.append(iter(specs[parent].when))
    return tuple(done.values())


def _cycle(visiting: list[str], again: str) -> str:
    names = [*visiting[visiting.index(again) :], again]
    if len(names) <= 10:
        return f"conditions form a cycle: {' -> '.join(names)}"
    shown = " -> ".join([*names[:3], "...", *names[-2:]])
    return f"conditions form a cycle through {len(names) - 1} parameters: {shown}"


def _param(reader: Reader, name: str, raw: Any, path: KeyPath) -> ParamSpec:
    items_at = (*path, "choices")  # where the YAML holds the choices' items
    if isinstance(raw, list):  # shorthand: a list is the choices of a categorical
        raw, items_at = {"type": "categorical", "choices": raw}, path
    if not isinstance(raw, dict):
        raise reader.err(
            path,
            f"expected a mapping with 'type' (float, int, categorical), got {kind_of(raw)};"
            " put constants under 'fixed'",
        )
    spec = reader.mapping(raw, path, PARAM_KEYS)
    kind = spec.get("type")
    if kind is None:
        kind = "categorical" if "choices" in spec else None
    if kind not in ("float", "int", "categorical"):
        hint = did_you_mean(str(kind), ("float", "int", "categorical"))
        raise reader.err(
            (*path, "type"), f"expected float, int or categorical, got {kind!r}{hint}"
        )
    when = _when(reader, spec.get("when", {}), (*path, "when"))
    if kind == "categorical":
        for key in ("low", "high", "log", "step"):
            if key in spec:
                raise reader.err((*path, key), "not allowed for a categorical parameter")
        choices = _choices(reader, spec, path, items_at)
        return ParamSpec(name, "categorical", choices=choices, when=when)
    if "choices" in spec:
        raise reader.err((*path, "choices"), f"not allowed for a {kind} parameter")
    for key in ("low", "high"):
        if key not in spec:
            raise reader.err(path, f"missing {key!r} for a {kind} parameter")
    low = reader.number(spec["low"], (*path, "low"))
    high = reader.number(spec["high"], (*path, "high"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise reader.err((*path, "log"), f"expected true or false, got {kind_of(log)}")
    if kind == "int":
        for key, v in (("low", low), ("high", high)):
            if not isinstance(v, int):
                raise reader.err(
                    (*path, key), f"expected an integer for an int parameter, got {v}"
                )
    if low >= high:
        raise reader.err((*path, "low"), f"low ({low}) must be less than high ({high})")
    if log and low <= 0:
        raise reader.err((*path, "low"), f"a log-scale parameter needs low > 0, got {low}")
    step = _step(reader, spec.get("step"), kind, low, high, log, (*path, "step"))
    numeric: ParamKind = "int" if kind == "int" else "float"
    return ParamSpec(name, numeric, low=low, high=high, log=log, step=step, when=when)


def _step(
    reader: Reader,
    raw: Any,
    kind: str,
    low: float | int,
    high: float | int,
    log: bool,
    path: KeyPath,
) -> float | int | None:
    if raw is None:
        return None
    step = reader.number(raw, path)
    if kind == "int" and not isinstance(step, int):
        raise reader.err(path, f"expected an integer step, got {step}")
    if step <= 0:
        raise reader.err(path, f"must be positive, got {step}")
    if log and step != 1:
        raise reader.err(path, "log scale cannot be combined with a step")
    count = (high - low) / step
    if kind == "float" and not count <= MAX_STEPS:  # also inf: a step of 5e-324
        raise reader.err(
            path,
            f"step {step} gives more than {MAX_STEPS:,} values: leave the parameter"
            " continuous (no step)",
        )
    if abs(count - round(count)) > 1e-9 * max(1.0, abs(count)):
        raise reader.err(path, f"high - low ({high - low}) is not a multiple of step ({step})")
    return None if log else step


def _choices(
    reader: Reader, spec: dict[str, Any], path: KeyPath, items_at: KeyPath
) -> tuple[Scalar, ...]:
    choices = spec.get("choices")
    here = (*path, "choices")
    if not isinstance(choices, list) or not choices:
        raise reader.err(here, f"expected a non-empty list of values, got {kind_of(choices)}")
    texts = any(isinstance(c, str) for c in choices)
    seen: list[Scalar] = []
    for i, c in enumerate(choices):
        if c is not None and not isinstance(c, str | int | float | bool):
            raise reader.err((*here, i), f"choices must be scalars, got {kind_of(c)}")
        if isinstance(c, float) and not math.isfinite(c):
            raise reader.err((*here, i), f"choices must be finite, got {c}")
        spelled = reader.src.spelled.get((*items_at, i))
        if spelled and texts:
            raise reader.err(
                (*here, i),
                f"YAML 1.1 reads {spelled} as the boolean {c} among text choices;"
                f" quote it ('{spelled}') to mean the text",
            )
        twin = next((s for s in seen if s == c), None)
        if twin is not None or (c is None and None in seen):
            if type(twin) is type(c):
                raise reader.err((*here, i), f"duplicate choice {c!r}")
            raise reader.err(
                (*here, i),
                f"{c!r} and {twin!r} are one choice to Optuna (it compares choices with"
                " ==); quote one to make it text",
            )
        seen.append(c)
    return tuple(seen)


def _when(reader: Reader, value: Any, path: KeyPath) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(value, dict):
        raise reader.err(
            path, f"expected a mapping of parent parameter -> value(s), got {kind_of(value)}"
        )
    out: dict[str, tuple[Scalar, ...]] = {}
    for parent, allowed in value.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values:
            raise reader.err((*path, parent), "expected a value or a non-empty list of values")
        out[parent] = tuple(values)
    return out
