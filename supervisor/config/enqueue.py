"""The ``enqueue:`` section of a space file: configurations to train first, in order.

    enqueue:
      - {learning_rate: 1.0e-3, filters1: 8, optimizer: adam}   # the paper's
      - {optimizer: sgd}                                         # the rest sampled

Each entry fixes some or all searched parameters (Optuna's ``enqueue_trial``); the
sampler proposes the ones left out. Every value must be one the space could propose: a
value outside it would be dropped by Optuna with a warning, and the sampler's draw
trained in its place. A conditional parameter needs its parents in the same entry, with
a value under which it is searched.
"""

from __future__ import annotations

from typing import Any

from supervisor.config.params import ParamSpec, Scalar, contains, is_active
from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath
from supervisor.errors import did_you_mean

MAX_ENTRIES = 10_000


def read_enqueue(
    reader: Reader, value: Any, params: tuple[ParamSpec, ...], fixed: dict[str, Any]
) -> tuple[dict[str, Scalar], ...]:
    path: KeyPath = ("enqueue",)
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise reader.err(path, f"expected a list of configurations, got {kind_of(value)}")
    if len(value) > MAX_ENTRIES:
        raise reader.err(path, f"at most {MAX_ENTRIES} configurations, got {len(value)}")
    entries: list[dict[str, Scalar]] = []
    for i, entry in enumerate(value):
        read = _entry(reader, entry, (*path, i), params, fixed)
        if read in entries:
            first = entries.index(read)
            raise reader.err((*path, i), f"the same configuration as enqueue[{first}]")
        entries.append(read)
    return tuple(entries)


def _entry(
    reader: Reader, entry: Any, path: KeyPath, params: tuple[ParamSpec, ...], fixed: dict[str, Any]
) -> dict[str, Scalar]:
    if not isinstance(entry, dict):
        raise reader.err(path, f"expected a mapping of parameter -> value, got {kind_of(entry)}")
    if not entry:
        raise reader.err(path, "an empty configuration: give at least one parameter's value")
    specs = {p.name: p for p in params}
    for name, value in entry.items():
        where = (*path, name)
        if name in fixed:
            raise reader.err(where, "is fixed under 'fixed', not searched")
        spec = specs.get(name)
        if spec is None:
            names = sorted(specs)
            hint = did_you_mean(str(name), names)
            expected = ", ".join(names)
            raise reader.err(where, f"not a searched parameter{hint}; expected one of {expected}")
        if not contains(spec, value):
            raise reader.err(where, f"{value!r} is not a value of {spec.describe()}")
    # As the sampler's trials hold them (``filters: 8.0`` is the int 8): an entry
    # that repeats a trained configuration is then known as one on a resume.
    entry = {name: _as_drawn(specs[name], value) for name, value in entry.items()}
    for spec in params:  # parents first: each condition is judged on the entry's values
        if spec.name not in entry or is_active(spec, entry):
            continue
        for parent, allowed in spec.when.items():
            shown = " or ".join(repr(v) for v in allowed)
            if parent not in entry:
                raise reader.err(
                    (*path, spec.name),
                    f"give {parent!r} too: {spec.name} is searched only when {parent} is {shown}",
                )
            if entry[parent] not in allowed:
                raise reader.err(
                    (*path, spec.name),
                    f"searched only when {parent} is {shown}, and this entry has "
                    f"{parent} {entry[parent]!r}",
                )
    return dict(entry)


def _as_drawn(spec: ParamSpec, value: Scalar) -> Scalar:
    if spec.kind == "categorical" or not isinstance(value, int | float):
        return value  # a choice, kept as written (its type tells it apart)
    return int(value) if spec.kind == "int" else float(value)


def grid_problem(entries: tuple[dict[str, Scalar], ...]) -> tuple[KeyPath, str] | None:
    """Why ``enqueue`` cannot go with the grid sampler. Optuna gives an enqueued trial no
    grid point: one leaving a parameter out fails ("All parameters must be specified when
    using GridSampler with enqueue_trial", counted as the model's failure), and a whole
    one is trained again when the grid reaches it, so a budget of the grid's size leaves
    one point untrained. Brute force counts enqueued trials as visited."""
    if not entries:
        return None
    return ("enqueue",), (
        "the grid sampler trains every point of its grid and gives an enqueued"
        " configuration none (one point would be left out); leave enqueue out,"
        " or use sampler: bruteforce"
    )
