"""Sampler names of the space file -> Optuna samplers. Optuna does the searching.

Each entry names the Optuna class and the optional package it needs, so an unusable
sampler is reported while validating the file, not when the first trial is asked.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.errors import did_you_mean

if TYPE_CHECKING:
    import optuna

    from supervisor.config.params import ParamSpec


@dataclass(frozen=True)
class SamplerEntry:
    cls: str  # attribute of ``module``
    needs: str | None = None  # importable module the sampler requires
    multi_objective: bool = True
    needs_grid: bool = False  # takes the search space as a grid
    module: str = "optuna.samplers"

    def load(self) -> type[Any]:
        return getattr(importlib.import_module(self.module), self.cls)


SAMPLERS: dict[str, SamplerEntry] = {
    "random": SamplerEntry("RandomSampler"),
    "tpe": SamplerEntry("TPESampler"),
    "gp": SamplerEntry("GPSampler", needs="torch"),
    "cmaes": SamplerEntry("CmaEsSampler", needs="cmaes", multi_objective=False),
    # The supervisor's own (README, Search at scale): GP + Thompson sampling in a trust region.
    "turbo": SamplerEntry(
        "TrustRegionSampler", multi_objective=False, module="supervisor.config.trust_region"
    ),
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
DEFAULT_HISTORY: dict[str, int] = {"tpe": 300, "gp": 200, "turbo": 600}
MIN_HISTORY = 50  # = history.MIN_LIMIT (not imported here: that module loads Optuna)

# The supervisor's own options: how the model-based sampler starts (``Startup``).
# ``startup``: the points of its first trials; ``sobol``: a scrambled Sobol sequence;
# ``random``; ``optuna``: Optuna's own start-up (random). ``startup_until``: when the model
# takes over; ``finished`` (Optuna's rule): once ``n_startup_trials`` trials have finished,
# so with K trials in flight about K + n_startup_trials start-up points; ``asked``: from
# trial number ``n_startup_trials`` on, with whatever has finished (the pending trials as
# constant liars).
STARTUP = "startup"
STARTUP_KINDS = ("sobol", "random", "optuna")
UNTIL = "startup_until"
UNTIL_KINDS = ("finished", "asked")
# The supervisor's own option: the share of the model's trials drawn instead from the
# start-up sequence (0 <= explore < 1), spread evenly over trial numbers.
EXPLORE = "explore"
# Defaults per sampler, from perf.quality (README, Search at scale): no start-up or share
# of exploration measured better than Optuna's own in general (8, 64 and 512 in flight,
# 16 problems), so the default is Optuna's; the others are there to choose.
DEFAULT_STARTUP: dict[str, str] = {"tpe": "optuna"}
DEFAULT_UNTIL: dict[str, str] = {"tpe": "finished"}
DEFAULT_EXPLORE: dict[str, float] = {"tpe": 0.0}
# The supervisor's own option: whether one TPE fit may serve several proposals
# (``supervisor.config.tpe_memo``); false: every proposal fits anew, as Optuna's TPE does.
SHARE_FIT = "share_fit"
# The supervisor's own option: what TPE makes of trials failed by the model (they raised,
# diverged, hit a limit). ``avoid``: they join its bad configurations as pruned trials do
# (through the history view); ``ignore``: left out, as Optuna's TPE does. CMA-ES: they
# rank last in their generation (``supervisor.config.cmaes_index``). turbo takes the same
# option itself (``supervisor.config.trust_region``).
FAILURES = "failures"
FAILURE_KINDS = ("avoid", "ignore")
FAILURE_AWARE = frozenset({"tpe", "cmaes"})  # samplers given ``failures`` by the supervisor
OWN_OPTIONS = (HISTORY, STARTUP, UNTIL, EXPLORE, SHARE_FIT, FAILURES)  # not given to Optuna
STARTUP_TRIALS = 10  # Optuna's default n_startup_trials
# Samplers whose proposals do not learn from results: no rounds of results to count.
BLIND = frozenset({"random", "qmc", "grid", "bruteforce"})
# Rounds of results (trials / trials in flight) a learning sampler is told it gets too few
# of: at 64 in flight turbo took up to 4.3 rounds (277 trials) to reach sequential TPE's
# 100-trial regret on 23 test problems (README, Search at scale).
FEW_ROUNDS = 4


def default_sampler(
    conditional: bool, n_objectives: int, pruned: bool, constrained: bool = False
) -> str:
    """The sampler of a space file that names none. ``turbo`` where it was measured: one
    objective, every parameter always active, no pruner (it models finished trials only);
    there its regret was lower than TPE's at 8, 64 and 512 trials in flight on test
    functions and offline tabular benchmarks, held-out ones included (README, Search at
    scale). TPE elsewhere: several objectives, conditional parameters (TPE models the
    sub-spaces; turbo would draw them at random), pruning (TPE learns from pruned trials),
    constraints (TPE steers by them; turbo cannot, ``supervisor.config.constraints``)."""
    return "tpe" if conditional or n_objectives > 1 or pruned or constrained else "turbo"


def rounds_note(name: str, remaining: int, slots: int) -> str | None:
    """A line for a campaign whose sampler learns from results but gets few rounds of
    them: with ``slots`` trials in flight a proposal misses the results of the trials still
    running, so ``remaining`` trials give the model about ``remaining / slots`` rounds of
    refinement, whatever its batch rule (no more run at once than remain). None where
    that is not few."""
    flight = min(slots, remaining)
    if name in BLIND or flight <= 1 or remaining >= FEW_ROUNDS * flight:
        return None
    return (
        f"note: {remaining} trials with {flight} in flight give the {name} sampler about"
        f" {remaining / flight:.1f} rounds of results to learn from; fewer in flight or more"
        " trials give it more (README, Search at scale)"
    )


# Samplers that model only the parameters every trial has (Optuna's intersection search
# space; the others are drawn at random), and CMA-ES, which models numbers only.
INTERSECTION_ONLY = frozenset({"cmaes", "gp", "turbo"})


def random_params_note(name: str, params: Sequence[ParamSpec]) -> str | None:
    """A line naming the parameters ``name`` draws at random instead of modelling (in
    place of Optuna's warning per parameter per trial), or None."""
    if name not in INTERSECTION_ONLY:
        return None
    drawn = [p.name for p in params if p.when or (name == "cmaes" and p.kind == "categorical")]
    if not drawn:
        return None
    what = "parameters that every trial has"
    what = f"numeric {what}" if name == "cmaes" else what
    return (
        f"note: the {name} sampler models only {what}; it draws {', '.join(drawn)} at random"
        " (tpe models them)"
    )


def sampler_notes(name: str, params: Sequence[ParamSpec], remaining: int, slots: int) -> list[str]:
    """What a campaign says when it starts about its sampler (``rounds_note``,
    ``random_params_note``)."""
    notes = (rounds_note(name, remaining, slots), random_params_note(name, params))
    return [note for note in notes if note]


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

    cls = SAMPLERS[name].load()
    accepted = set(inspect.signature(cls).parameters) - RESERVED
    if name in DEFAULT_HISTORY:
        accepted.add(HISTORY)
        limit = options.get(HISTORY)
        if HISTORY in options and limit is not None and not _at_least(limit, MIN_HISTORY):
            return HISTORY, f"expected null or an integer >= {MIN_HISTORY}, got {limit!r}"
    if name in FAILURE_AWARE:
        accepted.add(FAILURES)
        if FAILURES in options and options[FAILURES] not in FAILURE_KINDS:
            allowed = ", ".join(FAILURE_KINDS)
            return FAILURES, f"expected one of {allowed}, got {options[FAILURES]!r}"
    if name in DEFAULT_STARTUP:
        accepted |= {STARTUP, UNTIL, EXPLORE, SHARE_FIT}
        if not isinstance(options.get(SHARE_FIT, True), bool):
            return SHARE_FIT, f"expected true or false, got {options[SHARE_FIT]!r}"
        if options.get(FAILURES) == "avoid" and HISTORY in options and options[HISTORY] is None:
            return FAILURES, "avoid needs a history view (history: null shows TPE every trial)"
        for key, kinds in ((STARTUP, STARTUP_KINDS), (UNTIL, UNTIL_KINDS)):
            if key in options and options[key] not in kinds:
                return key, f"expected one of {', '.join(kinds)}, got {options[key]!r}"
        share = options.get(EXPLORE, 0.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            return EXPLORE, f"expected a number in [0, 1), got {share!r}"
        if options.get(STARTUP, DEFAULT_STARTUP[name]) == "optuna" and (share or UNTIL in options):
            return EXPLORE if share else UNTIL, "needs startup: sobol or random"
    for key in options:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            return key, f"{SAMPLERS[name].cls} has no option {key!r}{hint}"
    return None


def history_limit(name: str, options: Mapping[str, Any]) -> int | None:
    """How many finished trials (and pending ones) the sampler ``name`` with ``options``
    models at most (``supervisor.config.history``); None: every one."""
    if name not in DEFAULT_HISTORY:
        return None
    limit = options.get(HISTORY, DEFAULT_HISTORY[name])
    return None if limit is None else max(MIN_HISTORY, int(limit))


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
    startup = kwargs.pop(STARTUP, DEFAULT_STARTUP.get(name))
    share = float(kwargs.pop(EXPLORE, DEFAULT_EXPLORE.get(name, 0.0)))
    until = kwargs.pop(UNTIL, DEFAULT_UNTIL.get(name))
    share_fit = kwargs.pop(SHARE_FIT, True)
    failures = kwargs.pop(FAILURES, "avoid") if name in FAILURE_AWARE else None
    staged = startup is not None and startup != "optuna"
    size = int(kwargs.get("n_startup_trials", STARTUP_TRIALS))
    if staged:
        kwargs["n_startup_trials"] = 0  # the start-up is ``Startup``'s, counted by number
    cls = per_trial_seeds(entry.load(), bounded=limit is not None, startup=staged)
    if entry.needs_grid:
        kwargs["search_space"] = grid or {}
    if name in INTERSECTION_ONLY and name != "turbo":  # said once (``random_params_note``)
        kwargs.setdefault("warn_independent_sampling", False)
    sampler: optuna.samplers.BaseSampler = cls(seed=seed, **kwargs)
    sampler._supervisor_seed = seed  # type: ignore[attr-defined]
    if limit is not None:
        sampler.history_limit = limit  # type: ignore[attr-defined]
    if not share_fit:
        sampler.share_fit = False  # type: ignore[attr-defined]
    if failures == "avoid" and limit is not None:
        sampler.failures_as_pruned = True  # type: ignore[attr-defined]
    if failures == "avoid" and name == "cmaes":
        sampler.failures_as_worst = True  # type: ignore[attr-defined]
    if staged:
        first: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        if startup == "sobol":
            with warnings.catch_warnings():  # "experimental" (since Optuna 3.0)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                first = optuna.samplers.QMCSampler(
                    qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
                )
        sampler.startup_sampler = first  # type: ignore[attr-defined]
        sampler.startup_trials = size  # type: ignore[attr-defined]
        sampler.explore_share = share  # type: ignore[attr-defined]
        sampler.until_asked = until == "asked"  # type: ignore[attr-defined]
    return sampler


class Startup:
    """Put before a model-based Optuna sampler's class: a start-up trial is drawn by
    ``startup_sampler`` (Sobol points cover the space more evenly than random ones), the
    others by the model. A start-up trial: one asked before ``startup_trials`` trials have
    finished (Optuna's rule; with ``until_asked``, one numbered below ``startup_trials``,
    so with many in flight the model's first proposals know only the pending start-up
    points, as constant liars), or one of the ``explore_share`` of later trials (evenly
    spread over trial numbers). Each trial's draw stays a function of (seed, trial number,
    history), as ``per_trial_seeds`` needs; warm-start trials count as finished."""

    startup_sampler: Any
    startup_trials: int = STARTUP_TRIALS
    explore_share: float = 0.0
    until_asked: bool = False
    _startup_done: bool = False  # startup_trials trials have finished (it stays so)
    _startup_verdict: tuple[int, bool] = (-1, False)  # (trial number, starts): one per trial

    def starts(self, trial: optuna.trial.FrozenTrial, study: optuna.Study | None = None) -> bool:
        n, share = trial.number, self.explore_share
        if int((n + 1) * share) > int(n * share):
            return True
        if self.until_asked or study is None:
            return n < self.startup_trials
        if self._startup_done:
            return False
        if self._startup_verdict[0] != n:
            from optuna.trial import TrialState

            done = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
            )
            self._startup_done = len(done) >= self.startup_trials
            self._startup_verdict = (n, not self._startup_done)
        return self._startup_verdict[1]

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, Any]:
        if trial.number >= self.startup_trials:  # the model's space (kept incrementally)
            space = super().infer_relative_search_space(study, trial)  # type: ignore[misc]
            if space or not self.starts(trial, study):
                return dict(space)
        space = {}  # every parameter seen so far (the first trial: none)
        for seen in study.get_trials(deepcopy=False):
            space.update(seen.distributions)
        return space

    def sample_relative(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        if not self.starts(trial, study):
            return super().sample_relative(study, trial, search_space)  # type: ignore[misc]
        if not search_space:
            return {}
        with warnings.catch_warnings():  # scipy: Sobol balance needs 2^m points
            warnings.simplefilter("ignore")
            return dict(self.startup_sampler.sample_relative(study, trial, search_space))

    def sample_independent(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, name: str, dist: Any
    ) -> Any:
        if not self.starts(trial, study):
            return super().sample_independent(study, trial, name, dist)  # type: ignore[misc]
        return self.startup_sampler.sample_independent(study, trial, name, dist)


def _at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# (Optuna sampler class, bounded history, start-up) -> its subclass that reseeds per trial.
_PER_TRIAL: dict[tuple[type, bool, bool], type] = {}


def per_trial_seeds(cls: type[Any], bounded: bool = False, startup: bool = False) -> type[Any]:
    """``cls`` made to reseed its random states before each trial from (seed, trial number),
    and, when ``bounded``, to model a bounded view of large studies
    (``supervisor.config.history.BoundedHistory``), and, when ``startup``, to draw its
    start-up trials apart (``Startup``). TPE converts each trial's observations once
    (``supervisor.config.tpe_memo``); CMA-ES keeps an index of the study
    (``supervisor.config.cmaes_index``).

    A sampler seeded once per process replays its proposals on every start: a resumed
    campaign would propose the first run's configurations again (told as duplicates,
    never trained), and drivers sharing a study would propose the same ones. Seeded per
    trial, the proposals of trial n depend on the seed, n and the study's history only:
    a fresh campaign is reproducible from its seed, and a resumed run or a second driver,
    whose trials have new numbers, explores new points. (QMC draws the point of its n-th
    sample, and grid and brute force take the points not yet visited: the same holds.)
    """
    found = _PER_TRIAL.get((cls, bounded, startup))
    if found is None:
        import optuna

        def before_trial(self: Any, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            reseed(self, self._supervisor_seed, trial.number)
            cls.before_trial(self, study, trial)

        bases: tuple[type, ...] = (cls,)
        if issubclass(cls, optuna.samplers.TPESampler):
            from supervisor.config.tpe_memo import ReprMemo

            bases = (ReprMemo, cls)  # each trial's observations converted once
        if issubclass(cls, optuna.samplers.CmaEsSampler):
            from supervisor.config.cmaes_index import CmaIndex

            bases = (CmaIndex, cls)  # the study's scans answered from an index
        if bounded:
            from supervisor.config.history import BoundedHistory

            bases = (BoundedHistory, *bases)
        if startup:
            bases = (Startup, *bases)
        members = {"before_trial": before_trial, "__module__": __name__}
        found = type(cls.__name__, bases, members)
        _PER_TRIAL[(cls, bounded, startup)] = found
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
