"""``sampler: turbo``: Bayesian optimisation that stays sample-efficient with many trials in
flight. A Gaussian process models the finished trials; each proposal is the minimum of one
joint posterior sample (Thompson sampling) over candidates in a trust region around the
best trial (TuRBO, Eriksson et al., NeurIPS 2019). The pending trials are believed at the
model's mean (the kriging believer), so they shrink the posterior's spread where trials
already run and the next sample looks elsewhere, yet the region keeps hundreds of
proposals close to what is known to be good, where TPE's constant liar spreads them over
the whole space.

The trust region is a box around the best trial, its sides scaled by the kernel's length
scales: it doubles after ``success_tolerance`` results in a row that improved on the best,
halves after ``failure_tolerance`` in a row that did not, and starts over at
``initial_length`` when it has shrunk below 1/128. Its state is recomputed from the
finished trials in the order they finished, and the kernel's hyper-parameters are fitted on
the first ``c`` of them at fixed counts ``c``: a proposal is a function of the seed, the
trial's number and the study's history, as ``samplers.per_trial_seeds`` requires.
"""

from __future__ import annotations

import datetime
import math
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from supervisor.optuna_internals import SearchSpaceTransform

MIN_LENGTH, MAX_LENGTH = 0.5**7, 1.6
MAX_CANDIDATES = 1000  # the joint sample's Cholesky factor is cubic in them
MAX_FINISHED = 600  # modelled at most: the best sixth and the most recent others
MAX_PENDING = 400  # believed at most: the most recent


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
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._search_space = optuna.search_space.IntersectionSearchSpace()
        self._n_startup = n_startup_trials
        self._initial_length = float(initial_length)
        self._success_tolerance = success_tolerance
        self._failure_tolerance = failure_tolerance
        self._n_candidates = n_candidates
        self._kernels: dict[tuple[int, int], Any] = {}  # (dims, trials fitted on) -> kernel

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
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        done = [t for t in trials if t.state == TrialState.COMPLETE and names <= t.params.keys()]
        if len(done) < self._n_startup:
            return {}
        earliest = datetime.datetime.min
        done.sort(key=lambda t: (t.datetime_complete or earliest, t.number))
        pending = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and t.number != trial.number
            and names <= t.params.keys()
        ][-MAX_PENDING:]
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        values = np.array([sign * float(t.value) for t in done])  # type: ignore[arg-type]
        transform = SearchSpaceTransform(search_space, transform_0_1=True)
        x = np.array([transform.transform(t.params) for t in done])
        rng = np.random.default_rng([self._seed, trial.number])
        ranked = self._propose(x, values, [transform.transform(t.params) for t in pending], rng)
        # The first candidate that is not a configuration already trained or running: a
        # rounded int or a one-hot choice can map a candidate back onto one (a duplicate
        # the driver would not train: a proposal spent on nothing).
        taken = {_key(t.params) for t in (*done, *pending)}
        first: dict[str, Any] | None = None
        for point in ranked:
            params = dict(transform.untransform(point))
            if _key(params) not in taken:
                return params
            first = first or params
        return first or {}

    def _propose(
        self,
        x: np.ndarray,
        values: np.ndarray,
        pending: list[np.ndarray],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Candidates in the order of one posterior sample at them, the lowest first."""
        dims = x.shape[1]
        length = self._length(values, dims)
        kernel = self._kernel(x, values)
        x, values = _modelled(x, values)
        z = _normal_scores(values)
        best = x[int(np.argmin(values))]
        if pending:
            believed = np.array(pending)
            z = np.concatenate([z, _posterior_mean(kernel, x, z, believed)])
            x = np.vstack([x, believed])
        scales = _length_scales(kernel, dims)
        half = length * scales / np.exp(np.mean(np.log(scales))) / 2
        candidates = _candidates(best, best - half, best + half, self._n_candidates, rng)
        return candidates[np.argsort(_joint_sample(kernel, x, z, candidates, rng))]

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
        count = self._n_startup
        while count + max(4, count // 8) <= len(values):
            count += max(4, count // 8)
        key = (x.shape[1], count)
        if key not in self._kernels:
            from sklearn.gaussian_process import GaussianProcessRegressor
            from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

            dims = x.shape[1]
            shape = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
                np.full(dims, 0.5), (1e-2, 20.0), 2.5
            )
            model = GaussianProcessRegressor(
                shape + WhiteKernel(1e-4, (1e-6, 1e-1)), random_state=0
            )
            fit_x, fit_values = _modelled(x[:count], values[:count])
            with warnings.catch_warnings():  # convergence warnings at the bounds
                warnings.simplefilter("ignore")
                model.fit(fit_x, _normal_scores(fit_values))
            self._kernels = {key: model.kernel_}  # counts only grow: older fits are done
        return self._kernels[key]


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def _modelled(x: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_FINISHED results: the best sixth of them and the most recent others."""
    if len(values) <= MAX_FINISHED:
        return x, values
    order = np.argsort(values, kind="stable")
    keep = set(order[: MAX_FINISHED // 6].tolist())
    for i in range(len(values) - 1, -1, -1):
        if len(keep) >= MAX_FINISHED:
            break
        keep.add(i)
    rows = np.array(sorted(keep))
    return x[rows], values[rows]


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks as standard normal quantiles: a heavy tail or a scale does not drive the fit."""
    from scipy.stats import norm

    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.asarray(norm.ppf((ranks + 0.5) / len(values)))


def _length_scales(kernel: Any, dims: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(kernel.k1.k2.length_scale, dtype=float), (dims,))


def _posterior_mean(kernel: Any, x: np.ndarray, z: np.ndarray, at: np.ndarray) -> np.ndarray:
    factor = np.linalg.cholesky(kernel(x) + 1e-8 * np.eye(len(x)))
    weights = np.linalg.solve(factor.T, np.linalg.solve(factor, z))
    return np.asarray(kernel(at, x) @ weights)


def _candidates(
    best: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    count: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sobol points in the region, each moving only some coordinates away from the best
    (TuRBO's perturbation: in many dimensions a few at a time)."""
    from scipy.stats.qmc import Sobol

    dims = len(best)
    low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    n = count or min(100 * dims, MAX_CANDIDATES)
    with warnings.catch_warnings():  # balance properties need 2^m points
        warnings.simplefilter("ignore")
        unit = Sobol(dims, scramble=True, seed=rng).random(n)
    moved = rng.random((n, dims)) <= min(20.0 / dims, 1.0)
    still = np.flatnonzero(~moved.any(axis=1))
    moved[still, rng.integers(0, dims, len(still))] = True
    return np.where(moved, low + (high - low) * unit, best)


def _joint_sample(
    kernel: Any, x: np.ndarray, z: np.ndarray, at: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw of the posterior at every candidate together (Thompson sampling)."""
    factor = np.linalg.cholesky(kernel(x) + 1e-8 * np.eye(len(x)))
    cross = kernel(x, at)
    mean = cross.T @ np.linalg.solve(factor.T, np.linalg.solve(factor, z))
    reduced = np.linalg.solve(factor, cross)
    cov = kernel(at) - reduced.T @ reduced
    cov = (cov + cov.T) / 2 + 1e-6 * np.eye(len(at))
    try:
        root = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # not positive definite in floating point: clip the spectrum
        eigen, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.clip(eigen, 0.0, None))
    return np.asarray(mean + root @ rng.standard_normal(len(at)))
