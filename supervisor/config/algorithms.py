"""The ``sampler:`` and ``pruner:`` sections of a space file: a name and its options, each
checked against the Optuna class's signature and by constructing it once."""

from __future__ import annotations

import inspect
from typing import Any

from supervisor.config import pruners, samplers
from supervisor.config.experiment import Objective
from supervisor.config.optuna_options import build_problem
from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath


def read_sampler(reader: Reader, value: Any, n_objectives: int) -> tuple[str, dict[str, Any]]:
    path: KeyPath = ("sampler",)
    if isinstance(value, str):
        value = {"name": value}
    spec = reader.mapping(value, path, ("name", "options"))
    name = reader.string(spec.get("name"), (*path, "name"))
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise reader.err((*path, "options"), f"expected a mapping, got {kind_of(options)}")
    problem = samplers.check(name, options, n_objectives)
    if problem:
        raise reader.err((*path, "name"), problem)
    for key in options:
        if key in samplers.RESERVED:
            raise reader.err(
                (*path, "options", key), "set by the supervisor (use top-level 'seed')"
            )
    bad = samplers.check_options(name, options)
    if bad:
        raise reader.err((*path, "options", bad[0]), bad[1])
    refused = _sampler_values(name, options)
    if refused:
        key, problem = refused
        raise reader.err((*path, "options", key) if key else (*path, "name"), problem)
    return name, dict(options)


def _sampler_values(name: str, options: dict[str, Any]) -> tuple[str | None, str] | None:
    """The sampler built once with the file's option values, as the driver will build it."""

    entry = samplers.SAMPLERS[name]
    takes = inspect.signature(entry.load()).parameters  # turbo takes ``failures`` itself
    own = {k: v for k, v in options.items() if k not in samplers.OWN_OPTIONS or k in takes}
    fixed: dict[str, Any] = {"seed": 0}
    if entry.needs_grid:  # its grid is the space, checked with the parameters
        fixed["search_space"] = {}
    return build_problem(entry.load(), own, **fixed)


def read_pruner(
    reader: Reader, value: Any, objectives: tuple[Objective, ...]
) -> tuple[str, dict[str, Any]]:
    path: KeyPath = ("pruner",)
    if isinstance(value, str):
        value = {"name": value}
    spec = reader.mapping(value, path, ("name", "options"))
    name = reader.string(spec.get("name"), (*path, "name"))
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise reader.err((*path, "options"), f"expected a mapping, got {kind_of(options)}")
    try:
        pruners.make_pruner(name, options)
    except pruners.PrunerError as exc:
        where = (*path, "name") if exc.key is None else (*path, "options", exc.key)
        raise reader.err(where, exc.message) from None
    if name != "none" and len(objectives) > 1:
        raise reader.err(
            (*path, "name"),
            "pruning needs a single objective (Optuna keeps intermediate values only for"
            " single-objective studies); use pruner: none",
        )
    return name, dict(options)
