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

# The supervisor's own option: finished trials the sampler models at most (a bounded,
# representative view above that, ``supervisor.config.history``); null: all of them.
HISTORY = "history"
# Default per sampler, from perf.sampler_cost and perf.quality (README, Samplers).
DEFAULT_HISTORY: dict[str, int] = {"tpe": 300, "gp": 200}
MIN_HISTORY = 50  # = history.MIN_LIMIT (not imported here: that module loads Optuna)


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
    if name in DEFAULT_HISTORY:
        accepted.add(HISTORY)
        limit = options.get(HISTORY)
        if HISTORY in options and limit is not None and not _at_least(limit, MIN_HISTORY):
            return HISTORY, f"expected null or an integer >= {MIN_HISTORY}, got {limit!r}"
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
    """The sampler ``name``, whose randomness for each trial derives from (``seed``, the
    trial's number) alone (see ``per_trial_seeds``)."""
    import optuna

    entry = SAMPLERS[name]
    kwargs = dict(options)
    limit = kwargs.pop(HISTORY, DEFAULT_HISTORY.get(name))
    cls = per_trial_seeds(getattr(optuna.samplers, entry.cls), bounded=limit is not None)
    if entry.needs_grid:
        kwargs["search_space"] = grid or {}
    sampler: optuna.samplers.BaseSampler = cls(seed=seed, **kwargs)
    sampler._supervisor_seed = seed  # type: ignore[attr-defined]
    if limit is not None:
        sampler.history_limit = limit  # type: ignore[attr-defined]
    return sampler


def _at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# (Optuna sampler class, bounded history) -> its subclass that reseeds per trial.
_PER_TRIAL: dict[tuple[type, bool], type] = {}


def per_trial_seeds(cls: type[Any], bounded: bool = False) -> type[Any]:
    """``cls`` made to reseed its random states before each trial from (seed, trial number),
    and, when ``bounded``, to model a bounded view of large studies
    (``supervisor.config.history.BoundedHistory``).

    A sampler seeded once per process replays its proposals on every start: a resumed
    campaign would propose the first run's configurations again (told as duplicates,
    never trained), and drivers sharing a study would propose the same ones. Seeded per
    trial, the proposals of trial n depend on the seed, n and the study's history only:
    a fresh campaign is reproducible from its seed, and a resumed run or a second driver,
    whose trials have new numbers, explores new points. (QMC draws the point of its n-th
    sample, and grid and brute force take the points not yet visited: the same holds.)
    """
    found = _PER_TRIAL.get((cls, bounded))
    if found is None:

        def before_trial(self: Any, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            reseed(self, self._supervisor_seed, trial.number)
            cls.before_trial(self, study, trial)

        bases: tuple[type, ...] = (cls,)
        if bounded:
            from supervisor.config.history import BoundedHistory

            bases = (BoundedHistory, cls)
        members = {"before_trial": before_trial, "__module__": __name__}
        found = type(cls.__name__, bases, members)
        _PER_TRIAL[(cls, bounded)] = found
    return found


def random_states(sampler: object) -> list[Any]:
    """The random states (``LazyRandomState``) of a sampler and of the samplers and
    strategies it holds, in a fixed order; one shared by several parts appears once."""
    from supervisor.optuna_internals import LazyRandomState

    found: list[Any] = []
    seen: set[int] = set()
    stack: list[object] = [sampler]
    while stack:
        obj = stack.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, LazyRandomState):
            found.append(obj)
            continue
        for value in getattr(obj, "__dict__", {}).values():
            if type(value).__module__.startswith("optuna."):
                stack.append(value)
    return found


def reseed(sampler: Any, seed: int, number: int) -> None:
    """Seed each random state of ``sampler`` from (``seed``, ``number``, its position)."""
    import numpy as np

    states = sampler.__dict__.get("_supervisor_states")
    if states is None:  # the parts of a sampler do not change: found once
        states = sampler._supervisor_states = random_states(sampler)
    for i, state in enumerate(states):
        entropy = np.random.SeedSequence([seed % 2**32, number, i])
        state.rng.seed(int(entropy.generate_state(1)[0]))
