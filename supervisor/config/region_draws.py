"""Thompson draws for ``sampler: turbo`` (``supervisor.config.trust_region``): the Gaussian
process posterior at candidates in a trust region around the best trial, a box for numbers
and a Hamming ball for categorical choices, and draws from it that pick the lowest
configuration not yet taken. One posterior at fixed candidates serves many draws: each
is one matrix-vector product."""

from __future__ import annotations

import warnings
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution

from supervisor.optuna_internals import SearchSpaceTransform

MAX_CANDIDATES = 1000  # the joint sample's Cholesky factor is cubic in them
WIDENINGS = 8  # the region widens up to this many times to find an untaken configuration
LAST = 1e6  # added to a draw expected to fail: after every score of normal quantiles


@dataclass(frozen=True)
class Region:
    """The GP posterior and the trust region around ``best``."""

    kernel: Any
    x: np.ndarray  # the modelled finished trials and the believed pending ones
    factor: np.ndarray  # the Cholesky factor of their covariance
    weights: np.ndarray  # covariance^-1 scores (believed: the posterior mean)
    best: np.ndarray
    half: np.ndarray  # the trust region's half sides
    blocks: tuple[np.ndarray, ...]  # the one-hot columns of each categorical parameter

    @classmethod
    def fit(
        cls,
        kernel: Any,
        x: np.ndarray,
        z: np.ndarray,
        pending: list[np.ndarray],
        best: np.ndarray,
        half: np.ndarray,
        blocks: tuple[np.ndarray, ...],
    ) -> Region:
        from scipy.linalg import cho_solve

        if pending:
            x = np.vstack([x, np.array(pending)])
        factor = np.linalg.cholesky(kernel(x) + 1e-8 * np.eye(len(x)))
        if pending:  # the finished trials' factor is the leading block of the whole one
            done = len(z)
            mean = kernel(x[done:], x[:done]) @ cho_solve((factor[:done, :done], True), z)
            z = np.concatenate([z, mean])
        return cls(kernel, x, factor, cho_solve((factor, True), z), best, half, blocks)

    def smoothed(self, count: int) -> np.ndarray:
        """The posterior mean at the first ``count`` points (the finished trials): their
        scores with the noise the kernel sees in them taken out (a kernel of two sets of
        points leaves its white noise out). The pending trials, believed at the mean,
        change none of it."""
        return np.asarray(self.kernel(self.x[:count], self.x) @ self.weights)

    def candidates(self, widen: int, count: int | None, rng: np.random.Generator) -> np.ndarray:
        """Candidates in the region widened ``widen`` times: doubled each time, and each
        side at least ``widen / (WIDENINGS - 1)`` of the space (a side whose length scale
        is short grows too), so the last time the whole space."""
        half = np.maximum(self.half * 2.0**widen, widen / (WIDENINGS - 1))
        return sample_region(self.best, half, count, rng, self.blocks)

    def mean_sd(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mean and standard deviation at each point of ``at`` (no joint
        covariance: linear in the points, where ``posterior`` is cubic)."""
        from scipy.linalg import solve_triangular

        cross = self.kernel(self.x, at)
        reduced = solve_triangular(self.factor, cross, lower=True)
        var = self.kernel.diag(at) - np.sum(reduced**2, axis=0)
        return np.asarray(cross.T @ self.weights), np.sqrt(np.maximum(var, 1e-12))

    def posterior(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mean at the points of ``at`` and a root of their covariance: a
        joint draw is ``mean + root @ standard normal`` (Thompson sampling)."""
        from scipy.linalg import solve_triangular

        cross = self.kernel(self.x, at)
        reduced = solve_triangular(self.factor, cross, lower=True)
        cov = self.kernel(at) - reduced.T @ reduced
        cov = (cov + cov.T) / 2 + 1e-6 * np.eye(len(at))
        try:
            root = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:  # not positive definite in floating point: clip
            eigen, vectors = np.linalg.eigh(cov)
            root = vectors * np.sqrt(np.clip(eigen, 0.0, None))
        return np.asarray(cross.T @ self.weights), root


@dataclass(frozen=True)
class FailureModel:
    """Where trials fail: a Gaussian process regression of each result's failure (1 failed,
    0 finished) about the share that failed, so far from any result it expects that share.
    A candidate is expected to fail where the regression is above one half."""

    model: Region  # its best and half sides are not used
    share: float

    @classmethod
    def fit(cls, kernel: Any, x: np.ndarray, failed: np.ndarray) -> FailureModel:
        share = float(np.mean(failed))
        none = np.zeros(x.shape[1])
        return cls(Region.fit(kernel, x, failed - share, [], none, none, ()), share)

    def at(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The regression's mean and standard deviation at each point."""
        mean, sd = self.model.mean_sd(points)
        return mean + self.share, sd

    def log_finishes(self, points: np.ndarray) -> np.ndarray:
        """The log of the probability that a trial at each point finishes."""
        from scipy.special import log_ndtr

        mean, sd = self.at(points)
        return np.asarray(log_ndtr((0.5 - mean) / sd))


class Draws:
    """Thompson samples of the posterior at a fixed set of distinct configurations: the
    mean and a root of the covariance are computed once, each draw is one product. With
    ``failing``, a draw keeps to the candidates a draw of where trials fail expects to
    finish (the least likely to fail if none)."""

    def __init__(
        self,
        model: Region,
        points: np.ndarray,
        configs: dict[tuple[tuple[str, Any], ...], dict[str, Any]] | None,
        transform: SearchSpaceTransform,
        failing: FailureModel | None = None,
    ) -> None:
        self.model, self.points, self._transform = model, points, transform
        self.configs = None if configs is None else list(configs.items())  # (key, config)
        self._decoded: dict[int, tuple[Any, dict[str, Any]]] = {}  # floats: as chosen
        self.failing = failing
        self._prepare()
        # Candidates a draw found taken: a configuration once tried stays tried, so later
        # draws of thousands in flight do not walk past them again.
        self._taken = np.zeros(len(points), dtype=bool)

    def _prepare(self) -> None:
        self.mean, self.root = self.model.posterior(self.points)
        if self.failing is not None:
            self.fail_mean, self.fail_sd = self.failing.at(self.points)

    def scores(self, rng: np.random.Generator, pending: np.ndarray | None) -> np.ndarray:
        """One joint draw at the candidates, lowest first (the pending trials are
        believed in the posterior already); those the draw of failures expects to fail
        after all others, least likely to fail first (SCBO's rule)."""
        drawn = np.asarray(self.mean + self.root @ rng.standard_normal(len(self.mean)))
        if self.failing is None:
            return drawn
        fails = self.fail_mean + self.fail_sd * rng.standard_normal(len(drawn))
        return np.where(fails > 0.5, LAST + fails, drawn)

    @classmethod
    def over(
        cls,
        model: Region,
        candidates: np.ndarray,
        transform: SearchSpaceTransform,
        space: dict[str, BaseDistribution],
        failing: FailureModel | None = None,
    ) -> Draws:
        """On continuous floats every candidate is a distinct configuration, decoded when
        chosen; otherwise candidates are decoded first, so a draw picks among distinct
        configurations (a rounded int or a one-hot choice maps many candidates onto one)."""
        if all(
            isinstance(d, optuna.distributions.FloatDistribution) and d.step is None
            for d in space.values()
        ):
            return cls(model, candidates, None, transform, failing)
        distinct = {config_key(c): dict(c) for c in map(transform.untransform, candidates)}
        points = np.array([transform.transform(c) for c in distinct.values()])
        return cls(model, points, distinct, transform, failing)

    def pick(
        self,
        rng: np.random.Generator,
        taken: Container[Any],
        pending: np.ndarray | None = None,
    ) -> dict[str, Any] | None:
        """The lowest-scored configuration that is not in ``taken``, else None."""
        drawn = self.scores(rng, pending)
        drawn[self._taken] = np.inf  # found taken by an earlier draw: last, not looked at
        for i in np.argsort(drawn).tolist():
            if self._taken[i]:
                return None
            found = self.config(i)
            if found[0] not in taken:
                return dict(found[1])
            self._taken[i] = True
        return None

    def config(self, i: int) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
        """Candidate ``i``'s configuration and its key."""
        found = self.configs[i] if self.configs is not None else self._decoded.get(i)
        if found is None:  # floats: decoded when first drawn
            config = dict(self._transform.untransform(self.points[i]))
            found = self._decoded[i] = (config_key(config), config)
        return found


def config_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def sample_region(
    best: np.ndarray,
    half: np.ndarray,
    count: int | None,
    rng: np.random.Generator,
    blocks: tuple[np.ndarray, ...] = (),
) -> np.ndarray:
    """Sobol points in the box of half sides ``half`` around the best, each moving only
    some numeric coordinates away from it (TuRBO's perturbation: in many dimensions a few
    at a time), and a few of its categorical choices (the one-hot ``blocks``) to another
    choice at random: a Hamming ball (CASMOPOLITAN, Wan et al., ICML 2021). A box around
    a one-hot vector changes no choice until it is half the space wide."""
    from scipy.stats.qmc import Sobol

    dims = len(best)
    low, high = np.clip(best - half, 0.0, 1.0), np.clip(best + half, 0.0, 1.0)
    n = count or min(100 * dims, MAX_CANDIDATES)
    numeric = np.ones(dims, dtype=bool)
    for block in blocks:
        numeric[block] = False
    columns = np.flatnonzero(numeric)
    with warnings.catch_warnings():  # balance properties need 2^m points
        warnings.simplefilter("ignore")
        unit = Sobol(len(columns), scramble=True, seed=rng).random(n) if len(columns) else None
    points = np.repeat(best[None, :], n, axis=0)
    if unit is not None:
        moved = rng.random((n, len(columns))) <= min(20.0 / len(columns), 1.0)
        still = np.flatnonzero(~moved.any(axis=1))
        moved[still, rng.integers(0, len(columns), len(still))] = True
        inside = low[columns] + (high[columns] - low[columns]) * unit
        points[:, columns] = np.where(moved, inside, best[columns])
    if blocks:
        # The ball's radius: the box's mean side over the one-hot columns, as a share
        # of the choices (at least one, all of them once the box spans the space).
        side = 2 * float(np.mean(half[~numeric]))
        radius = max(1, round(len(blocks) * min(1.0, side)))
        least = 0 if unit is not None else 1
        for row, changes in enumerate(rng.integers(least, radius + 1, n)):
            for b in rng.permutation(len(blocks))[:changes]:
                block = blocks[b]
                now = int(np.argmax(best[block]))
                other = (now + 1 + int(rng.integers(len(block) - 1))) % len(block)
                points[row, block] = 0.0
                points[row, block[other]] = 1.0
    return points
