"""Sampler names of the space file -> Optuna samplers. Optuna does the searching.

Each entry names the Optuna class and the optional package it needs, so an unusable
sampler is reported while validating the file, not when the first trial is asked.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.errors import did_you_mean

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class SamplerEntry:
    cls: str  # attribute of optuna.samplers
    needs: str | None = None  # importable module the sampler requires
    multi_objective: bool = True
    needs_grid: bool = False  # takes the search space as a grid


SAMPLERS: dict[str, SamplerEntry] = {
    "random": SamplerEntry("RandomSampler"),
    "tpe": SamplerEntry("TPESampler"),
    "gp": SamplerEntry("GPSampler", needs="torch"),
    "cmaes": SamplerEntry("CmaEsSampler", needs="cmaes", multi_objective=False),
    "qmc": SamplerEntry("QMCSampler"),
    "nsgaii": SamplerEntry("NSGAIISampler"),
    "nsgaiii": SamplerEntry("NSGAIIISampler"),
    "grid": SamplerEntry("GridSampler", needs_grid=True),
    "bruteforce": SamplerEntry("BruteForceSampler"),
}

# Options the supervisor sets itself; users set them elsewhere in the file.
RESERVED = {"seed", "search_space"}


def check(name: str, options: Mapping[str, Any], n_objectives: int) -> str | None:
    """Return a problem with this sampler choice (without importing Optuna), or None."""
    if name not in SAMPLERS:
        return f"unknown sampler {name!r}{did_you_mean(name, SAMPLERS)}; known: " + ", ".join(
            SAMPLERS
        )
    entry = SAMPLERS[name]
    if entry.needs and importlib.util.find_spec(entry.needs) is None:
        need = entry.needs
        return f"sampler {name!r} needs the Python package {need!r} (pip install {need})"
    if n_objectives > 1 and not entry.multi_objective:
        return f"sampler {name!r} supports one objective only; use nsgaii, tpe or random"
    return None


def check_options(name: str, options: Mapping[str, Any]) -> tuple[str, str] | None:
    """(option, problem) for an option the sampler's constructor does not take, else None."""
    import optuna

    cls = getattr(optuna.samplers, SAMPLERS[name].cls)
    accepted = set(inspect.signature(cls).parameters) - RESERVED
    for key in options:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            return key, f"{SAMPLERS[name].cls} has no option {key!r}{hint}"
    return None


def make_sampler(
    name: str,
    options: Mapping[str, Any],
    seed: int,
    grid: dict[str, list[Any]] | None = None,
) -> optuna.samplers.BaseSampler:
    import optuna

    entry = SAMPLERS[name]
    cls = getattr(optuna.samplers, entry.cls)
    kwargs = dict(options)
    if entry.needs_grid:
        kwargs["search_space"] = grid or {}
    sampler: optuna.samplers.BaseSampler = cls(seed=seed, **kwargs)
    return sampler
