"""``sampler: turbo``: Bayesian optimisation that stays sample-efficient, and cheap, with
many trials in flight. A Gaussian process models the finished trials; each proposal is
the minimum of one joint posterior sample (Thompson sampling) over candidates in a trust
region around the best trial (TuRBO, Eriksson et al., NeurIPS 2019). The pending trials
are believed at the model's mean (the kriging believer), so they shrink the posterior's
spread where trials already run and a sample looks elsewhere, yet the region keeps
hundreds of proposals close to what is known to be good, where TPE's constant liar
spreads them over the whole space.

One posterior serves many proposals: it is made anew when the finished trials reach the
next fixed count (about 1/16 more, every result early on), and each proposal until then
is an independent draw from it, the lowest configuration not yet trained or running
(asynchronous parallel Thompson sampling, Kandasamy et al., AISTATS 2018). A proposal
then costs one matrix-vector product instead of a fit and two factorisations (~9 ms
against ~60-150 ms at 1,000 finished trials), so the sampler keeps up with a thousand
workers.

The trust region is a box around the best trial, its sides scaled by the kernel's length
scales: it doubles after ``success_tolerance`` results in a row that improved on the best,
halves after ``failure_tolerance`` in a row that did not, and starts over at
``initial_length`` when it has shrunk below 1/128. Around a categorical choice the region
is a Hamming ball instead, its radius the same share of the choices (at least one of them
changed at a time): a box changes no one-hot choice until it spans half the space. Its
state is recomputed from the finished trials in the order they finished, and the kernel's
hyper-parameters are fitted on the first ``c`` of them at fixed counts ``c``: a proposal is
a function of the seed, the trial's number and the study's history, as
``samplers.per_trial_seeds`` requires. The posterior, the region's candidates and the
draws are ``supervisor.config.region_draws``.

A trial that failed by the model (it raised, diverged, ran out of memory or time: a
property of its configuration, not of the machine) is data. The best configurations often
lie at the edge of failure (a learning rate just below divergence), and a model of the
finished trials alone extrapolates the best across that edge and keeps proposing there.
With ``failures="avoid"`` (the default) a second Gaussian process models where trials
fail (``region_draws.FailureModel``; scalable constrained BO, Eriksson & Poloczek,
AISTATS 2021): a Thompson draw keeps to the candidates its draw of that model expects to
finish, and expected improvement is weighted by the probability of finishing (Gardner et
al., ICML 2014). The objective's model and the region's counters stay those of the
finished trials: a failure entered at the worst value bent the model out of shape next to
the edge, and counted as a result that did not improve it shrank the region too soon
(both measured: README, Search at scale). ``failures="ignore"``: as if failed trials had
not run.

With ``noisy=True`` (training seeds that differ as much as good configurations do) the
kernel learns a noise level, and the region is placed and sized by the posterior mean of
the finished trials rather than their reported values, whose lowest is the luckiest.

``batch``: how the pending trials shape a proposal. ``believer``: as above; ``penalize``:
local penalisation (``supervisor.config.local_penalty``); the default, ``None``, is
``penalize`` where every parameter is discrete or fewer than ``PENALIZE_BELOW`` trials are
pending, and ``believer`` otherwise, as measured.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
from collections.abc import Callable, Collection, Container
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from supervisor.config.gp_kernel import (
    fitted_kernel,
    fixed_count,
    length_scales,
    modelled,
    normal_scores,
)
from supervisor.config.history import failed_by_model
from supervisor.config.local_penalty import PenalizedDraws
from supervisor.config.region_draws import WIDENINGS, Draws, FailureModel, Region, config_key
from supervisor.optuna_internals import SearchSpaceTransform

MIN_LENGTH, MAX_LENGTH = 0.5**7, 1.6
MAX_PENDING = 400  # believed at most: the most recent (finished: the ``history`` view)
REFRESH_SHARE = 16  # the posterior is made anew after about 1/16 more finished trials
MAX_FIT = 250  # the kernel's hyper-parameters are fitted on at most this many (cubic, ~50 times)
TRIED = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL, TrialState.PRUNED)
BATCH = ("believer", "penalize")  # how pending trials shape a proposal (``batch``)
FAILURES = ("avoid", "ignore")  # what the model makes of trials failed by the model
PENALIZE_BELOW = 32  # continuous spaces: penalised below this many pending (<= 32 in flight)


class TrustRegionSampler(optuna.samplers.BaseSampler):
    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        initial_length: float = 0.8,
        success_tolerance: int = 3,
        failure_tolerance: int | None = None,
        n_candidates: int | None = None,
        noisy: bool = False,
        batch: str | None = None,
        failures: str = "avoid",
    ) -> None:
        if not isinstance(n_startup_trials, int) or n_startup_trials < 2:
            raise ValueError(
                f"n_startup_trials: expected an integer >= 2, got {n_startup_trials!r}"
            )
        if not 0 < initial_length <= MAX_LENGTH:
            raise ValueError(f"initial_length: expected a number in (0, {MAX_LENGTH}]")
        for name, value in (("success_tolerance", success_tolerance),
                            ("failure_tolerance", failure_tolerance),
                            ("n_candidates", n_candidates)):  # fmt: skip
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(noisy, bool):
            raise ValueError(f"noisy: expected true or false, got {noisy!r}")
        if batch is not None and batch not in BATCH:
            raise ValueError(f"batch: expected one of {', '.join(BATCH)}, got {batch!r}")
        if failures not in FAILURES:
            raise ValueError(f"failures: expected one of {', '.join(FAILURES)}, got {failures!r}")
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._search_space = optuna.search_space.IntersectionSearchSpace()
        self._n_startup_trials = n_startup_trials
        self._initial_length = float(initial_length)
        self._success_tolerance = success_tolerance
        self._failure_tolerance = failure_tolerance
        self._n_candidates = n_candidates
        self._noisy = noisy
        self._batch = batch
        self._failures = failures
        self._kernels: dict[tuple[int, int], Any] = {}  # (dims, trials fitted on) -> kernel
        self._failure_kernels: dict[tuple[int, int], Any] = {}  # the same, where trials fail
        self._encoded: tuple[Any, dict[int, np.ndarray]] = ((), {})  # (space, number -> x)
        # ((study, space, count), set, draws): the posterior's current set of candidates
        self._cached: tuple[Any, int, Draws] | None = None
        self._keys: dict[int, tuple[tuple[str, Any], ...]] = {}  # number -> configuration
        # The study's configurations tried so far (``_taken``), kept as trials arrive.
        self._tried: tuple[str, set[tuple[tuple[str, Any], ...]]] = ("", set())
        self._scanned = 0  # trials numbered below this were looked at
        self._unkeyed: set[int] = set()  # of those, the ones with no parameters yet

    def reseed_rng(self) -> None:
        self._random.reseed_rng()
        self._seed = int(np.random.SeedSequence().generate_state(1)[0])

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self._search_space.calculate(study)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, name, dist)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        names = search_space.keys()
        trials = study.get_trials(deepcopy=False, states=TRIED)
        learns = self._failures == "avoid"
        done = [
            t
            for t in trials
            if names <= t.params.keys()
            and (t.state == TrialState.COMPLETE or (learns and failed_by_model(t)))
        ]
        if len(done) < self._n_startup_trials or not any(
            t.state == TrialState.COMPLETE for t in done
        ):
            return {}  # the start-up: random configurations (failures count, one must finish)
        taken = self._taken(study, trial, trials, names)
        rng = np.random.default_rng([self._seed, trial.number])
        transform = SearchSpaceTransform(search_space, transform_0_1=True)
        running = _pending(trials, trial, search_space)
        draws = self._draws(study, search_space, transform, running, done)
        pending = None
        if isinstance(draws, PenalizedDraws):  # penalised around the trials pending now
            encode = self._encoder(search_space, transform)
            pending = np.array([encode(t) for t in running][-MAX_PENDING:])
        chosen = draws.pick(rng, taken, pending)
        if chosen is None:  # more in flight than candidates: the region's next set
            draws = self._next_set(transform, search_space)
            chosen = draws.pick(rng, taken, pending)
        widen = 1
        while chosen is None and widen < WIDENINGS:  # a small discrete space: every
            region = draws.model.candidates(widen, self._n_candidates, rng)  # one taken
            wider = type(draws).over(draws.model, region, transform, search_space, draws.failing)
            chosen = wider.pick(rng, taken, pending)
            widen += 1
        return chosen or {}  # every configuration near the best is taken: a random one

    def _draws(
        self,
        study: optuna.Study,
        space: dict[str, BaseDistribution],
        transform: SearchSpaceTransform,
        pending: list[FrozenTrial],
        done: list[FrozenTrial],
    ) -> Draws:
        """The posterior at the trust region's candidates, made anew each time the finished
        trials reach the next fixed count (about 1/16 more), and drawn from for every
        proposal until then: one model serves the proposals between two counts."""
        # A bounded view (``history``) holds some of the finished trials: count the study's.
        finished = max(len(done), getattr(study, "finished_total", None) or 0)
        count = fixed_count(finished, self._n_startup_trials, REFRESH_SHARE, 1)
        kind = PenalizedDraws if self._penalizes(space, len(pending)) else Draws
        # The kind is in the key: a burst of asks between two counts can cross the switch.
        key = (study.study_name, tuple(sorted(space.items())), count, kind)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[2]
        earliest = datetime.datetime.min
        done = sorted(done, key=lambda t: (t.datetime_complete or earliest, t.number))
        # Believed in the posterior, or (penalised) left out of it.
        pending = [] if kind is PenalizedDraws else pending[-MAX_PENDING:]
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        failed = np.array([t.state != TrialState.COMPLETE for t in done])
        values = np.array([sign * t.value for t in done if t.value is not None])
        encode = self._encoder(space, transform)
        tried = np.array([encode(t) for t in done])
        x = tried[~failed]
        blocks = tuple(
            columns
            for columns, dist in zip(
                transform.column_to_encoded_columns, space.values(), strict=True
            )
            if isinstance(dist, optuna.distributions.CategoricalDistribution) and len(columns) > 1
        )
        model = self._model(x, values, [encode(t) for t in pending], blocks)
        failing = self._failure_model(tried, failed) if failed.any() else None
        rng = np.random.default_rng([self._seed, 2**32 + count])
        region = model.candidates(0, self._n_candidates, rng)
        draws = kind.over(model, region, transform, space, failing)
        self._cached = (key, 0, draws)
        return draws

    def _penalizes(self, space: dict[str, BaseDistribution], pending: int) -> bool:
        """``batch``, or by default local penalisation where every parameter is discrete,
        and on continuous spaces while fewer than ``PENALIZE_BELOW`` trials are pending
        (measured better there, worse with more pending: README, Search at scale)."""
        if self._batch is not None:
            return self._batch == "penalize"
        continuous = any(
            isinstance(d, optuna.distributions.FloatDistribution) and d.step is None
            for d in space.values()
        )
        return not continuous or pending < PENALIZE_BELOW

    def _next_set(
        self, transform: SearchSpaceTransform, space: dict[str, BaseDistribution]
    ) -> Draws:
        """Fresh candidates in the same region, from the same posterior, once every one of
        the current set is taken: with thousands in flight, more proposals come between
        two posteriors than a set holds. Set ``g`` of a count is drawn from (seed, count,
        g), and replaces the cached one: a proposal stays a function of the seed, the
        number and the study. (Widening the region instead made several posteriors per
        proposal and drew them ever farther from the best.)"""
        assert self._cached is not None
        key, generation, draws = self._cached
        generation += 1
        rng = np.random.default_rng([self._seed, 2**32 + key[2], generation])
        region = draws.model.candidates(0, self._n_candidates, rng)
        fresh = type(draws).over(draws.model, region, transform, space, draws.failing)
        self._cached = (key, generation, fresh)
        return fresh

    def _taken(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        trials: list[FrozenTrial],
        names: Collection[str],
    ) -> Container[tuple[tuple[str, Any], ...]]:
        """Configurations not to propose again: every one of the study that finished,
        runs, failed (its cause would recur) or was pruned, also those a bounded view of
        the history (``trials``) leaves out, and the view's pending proposals. Kept as
        trials arrive, so a proposal does not look at every trial of a long study."""
        every: list[FrozenTrial] | None = getattr(study, "all_trials", None)
        if every is None:
            every = study.get_trials(deepcopy=False)
        if every and every[-1].number != len(every) - 1:  # not one study's list: all of it
            every = [t for t in every if t.state != TrialState.WAITING]
            return {config_key(t.params) for t in [*every, *trials] if t.number != trial.number}
        name, tried = self._tried
        if name != study.study_name or len(every) < self._scanned:
            tried, self._scanned, self._unkeyed = set(), 0, set()
            self._tried = (study.study_name, tried)
        look = [*sorted(self._unkeyed), *range(self._scanned, len(every))]
        self._unkeyed, self._scanned = set(), len(every)
        for number in look:
            found = every[number]
            if (
                found.state in TRIED
                and number != trial.number
                and (found.state.is_finished() or names <= found.params.keys())
            ):
                tried.add(self._key(found))
            else:  # queued, or its parameters are being set: they come later
                self._unkeyed.add(number)
        # Pending proposals the study does not hold yet (the proposer's, numbered past its
        # trials, last in the view), and trials whose parameters are being set: keyed
        # afresh, as the proposal for a number may be made anew.
        proposals = itertools.takewhile(lambda t: t.number >= len(every), reversed(trials))
        setting = (every[n] for n in self._unkeyed)
        pending = {
            config_key(t.params)
            for t in itertools.chain(proposals, setting)
            if t.state == TrialState.RUNNING and t.number != trial.number and t.params
        }
        pending -= tried
        return _Either(tried, pending) if pending else tried

    def _key(self, trial: FrozenTrial) -> tuple[tuple[str, Any], ...]:
        """A trial's configuration, made once per trial: its parameters do not change."""
        found = self._keys.get(trial.number)
        if found is None:
            found = self._keys[trial.number] = config_key(trial.params)
        return found

    def _encoder(
        self, space: dict[str, BaseDistribution], transform: SearchSpaceTransform
    ) -> Callable[[FrozenTrial], np.ndarray]:
        """Trials encoded once per search space: a trial's parameters do not change."""
        key = tuple(sorted(space.items()))
        if self._encoded[0] != key:
            self._encoded = (key, {})
        memo = self._encoded[1]

        def encode(trial: FrozenTrial) -> np.ndarray:
            found = memo.get(trial.number)
            if found is None:
                found = memo[trial.number] = transform.transform(trial.params)
            return found

        return encode

    def _model(
        self,
        x: np.ndarray,
        values: np.ndarray,
        pending: list[np.ndarray],
        blocks: tuple[np.ndarray, ...],
    ) -> Region:
        """The posterior given the finished trials and the pending ones believed."""
        dims = x.shape[1]
        kernel = self._kernel(x, values)
        scales = length_scales(kernel, dims)
        shape = scales / np.exp(np.mean(np.log(scales))) / 2  # half sides per unit of length
        best, half = x[int(np.argmin(values))], self._length(values, dims) * shape
        region = Region.fit(kernel, x, normal_scores(values), pending, best, half, blocks)
        if not self._noisy:
            return region
        # The lowest reported value is the luckiest: the region is placed and sized by the
        # model's scores of the finished trials with the noise it sees in them taken out.
        judged = region.smoothed(len(values))
        best, half = x[int(np.argmin(judged))], self._length(judged, dims) * shape
        return dataclasses.replace(region, best=best, half=half)

    def _length(self, values: np.ndarray, dims: int) -> float:
        """The trust region's side after the results in the order they finished."""
        length, successes, failures, best = self._initial_length, 0, 0, math.inf
        fail_after = self._failure_tolerance or max(4, dims)
        for value in values:
            if value < best - 1e-3 * abs(best):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            best = min(best, value)
            if successes >= self._success_tolerance:
                length, successes = min(2 * length, MAX_LENGTH), 0
            elif failures >= fail_after:
                length, failures = length / 2, 0
            if length < MIN_LENGTH:
                length = self._initial_length
        return length

    def _kernel(self, x: np.ndarray, values: np.ndarray) -> Any:
        """The kernel fitted on the first ``c`` results, ``c`` the last fixed count reached."""
        count = fixed_count(len(values), self._n_startup_trials, 8, 4)
        key = (x.shape[1], count)
        if key not in self._kernels:
            fit_x, fit_values = modelled(x[:count], values[:count], MAX_FIT)
            # Noisy: the fit starts from a noise level it can leave (from 1e-4 it stays
            # there) and may explain up to all of the scores' variance as noise.
            noise = (1e-1, 1.0) if self._noisy else (1e-4, 1e-1)
            kernel = fitted_kernel(fit_x, normal_scores(fit_values), noise)
            self._kernels = {key: kernel}  # counts only grow: older fits are done
        return self._kernels[key]

    def _failure_model(self, x: np.ndarray, failed: np.ndarray) -> FailureModel:
        """Where trials fail, given every result so far; its kernel is fitted at fixed
        counts of results (on the most recent ``MAX_FIT``), as the objective's is."""
        count = fixed_count(len(failed), self._n_startup_trials, 8, 4)
        key = (x.shape[1], count)
        if key not in self._failure_kernels:
            shown = failed[:count][-MAX_FIT:].astype(float)
            kernel = fitted_kernel(x[:count][-MAX_FIT:], shown - shown.mean(), (1e-2, 1.0))
            self._failure_kernels = {key: kernel}
        return FailureModel.fit(self._failure_kernels[key], x, failed)


def _pending(
    trials: list[FrozenTrial], trial: FrozenTrial, space: dict[str, BaseDistribution]
) -> list[FrozenTrial]:
    """The trials running or proposed, other than the one asking, with every parameter."""
    return [
        t
        for t in trials
        if t.state == TrialState.RUNNING
        and t.number != trial.number
        and space.keys() <= t.params.keys()
    ]


class _Either(Container[Any]):
    """What is in one of two sets, without copying the large one per proposal."""

    def __init__(self, first: set[Any], second: set[Any]) -> None:
        self.first, self.second = first, second

    def __contains__(self, item: object) -> bool:
        return item in self.first or item in self.second
