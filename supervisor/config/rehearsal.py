"""A space file's sampler and pruner tried on a throwaway study before anything runs.

Optuna's constructors check few of their values: TPE takes ``n_ei_candidates: 0`` and
``prior_weight: -1``, CMA-ES ``popsize: 1`` and an ``x0`` outside the space, Hyperband
``reduction_factor: 1`` and ``min_resource: 0``. Each fails only when it first proposes
or judges a trial: every trial of a started campaign then fails (a sampler), or the
driver stops (a pruner). The rehearsal builds both as the driver does and runs a few
trials of the space on an in-memory study, their start-up cut to one trial, reporting
intermediate values to the pruner; where it fails, it names the option without which it
passes. The supervisor's own ``turbo`` checks its options itself, and its model costs
more than a rehearsal should, so it is not rehearsed.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from typing import Any

from supervisor.config import pruners, samplers
from supervisor.config.experiment import Direction
from supervisor.config.params import ParamSpec, suggest
from supervisor.config.yaml_source import KeyPath

TRIALS = 3  # one start-up trial, two proposed by the model
STEPS = 3  # intermediate values reported per trial
SKIPPED = frozenset({"turbo", "grid", "bruteforce"})  # checked where they are read


def rehearse(
    sampler: tuple[str, Mapping[str, Any]],
    pruner: tuple[str, Mapping[str, Any]],
    params: tuple[ParamSpec, ...],
    directions: list[Direction],
) -> tuple[KeyPath, str] | None:
    """(where, problem) when the sampler or pruner fails on a short run of this space."""
    failed = _run(sampler, pruner, params, directions)
    if failed is None:
        return None
    section, message = failed
    name, options = sampler if section == "sampler" else pruner
    for key in options:  # the option without which it passes
        trimmed = (name, {k: v for k, v in options.items() if k != key})
        tried = (trimmed, pruner) if section == "sampler" else (sampler, trimmed)
        if _run(tried[0], tried[1], params, directions) is None:
            return (section, "options", key), message
    return (section, "name"), message


def _run(
    sampler: tuple[str, Mapping[str, Any]],
    pruner: tuple[str, Mapping[str, Any]],
    params: tuple[ParamSpec, ...],
    directions: list[Direction],
) -> tuple[str, str] | None:
    """("sampler" | "pruner", what failed) for a run of ``TRIALS`` trials, else None."""
    import optuna

    name, options = sampler
    opts = dict(options)
    if "n_startup_trials" in opts or name in samplers.DEFAULT_STARTUP or name in ("cmaes", "gp"):
        opts["n_startup_trials"] = 1
    rng = random.Random(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            try:
                built = None if name in SKIPPED else samplers.make_sampler(name, opts, seed=0)
            except Exception as exc:  # an option left out may be needed
                return "sampler", _fails(name, exc)
            try:
                judge = pruners.make_pruner(*pruner) if len(directions) == 1 else None
            except Exception as exc:
                return "pruner", _fails(pruner[0], exc)
            study = optuna.create_study(directions=list(directions), sampler=built, pruner=judge)
            for _ in range(TRIALS):
                trial = study.ask()
                try:
                    suggest(trial, params)
                except Exception as exc:  # whatever the sampler raises
                    return "sampler", _fails(name, exc)
                try:
                    for step in range(STEPS if len(directions) == 1 else 0):
                        trial.report(rng.random(), step)
                        trial.should_prune()
                except Exception as exc:  # whatever the pruner raises
                    return "pruner", _fails(pruner[0], exc)
                study.tell(trial, [rng.random() for _ in directions])
        finally:
            optuna.logging.set_verbosity(verbosity)
    return None


def _fails(name: str, exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{name} fails on a trial run of {TRIALS} trials with these options: {first}"
