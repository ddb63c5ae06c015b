"""Local penalisation for ``sampler: turbo`` (``batch: penalize``; González et al., AISTATS
2016): the pending trials are not believed in the posterior; each proposal is the
candidate of the trust region with the highest expected improvement times a penalty
around every pending trial. The penalty is the probability that the trial's ball of
exclusion does not hold the candidate: a pending trial the model expects to score ``gap``
above the best cannot have the optimum within ``gap / L`` of it, ``L`` the posterior
mean's largest slope. Where the model is sure the ball is hard, where not it is soft.

Measured against the believer's Thompson draws (README, Search at scale): better where
every parameter is discrete (the tabular benchmarks) and on continuous functions with up
to 32 trials in flight (one at a time too, as plain expected improvement); worse there
with 64 in flight."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import numpy as np

from supervisor.config.region_draws import Draws

STEP = 1e-4  # central differences of the posterior mean, in the unit cube
CHUNK = 64  # candidates scored at a time against the pending trials
FAR = 6.0  # a penalty of Phi(z >= 6) is within 1e-9 of 1: left out


class PenalizedDraws(Draws):
    """Expected improvement at the region's candidates from a posterior of the finished
    trials only, penalised around the pending ones at each pick (deterministic: the
    random generator is not used)."""

    def _prepare(self) -> None:
        from scipy.stats import norm

        model, points = self.model, self.points
        self.best = float(np.min(model.smoothed(len(model.x))))
        self.mean, sd = model.mean_sd(points)
        u = (self.best - self.mean) / sd
        improvement = sd * (u * norm.cdf(u) + norm.pdf(u))
        self.log_ei = np.log(np.maximum(improvement, 1e-300))
        if self.failing is not None:  # times the probability of finishing (constrained EI)
            self.log_ei = self.log_ei + self.failing.log_finishes(points)
        self.slope = max(_largest_slope(model.kernel, model.x, model.weights, points), 1e-7)
        self._at: dict[bytes, tuple[float, float]] = {}  # a pending point -> mean, sd
        self._order = np.argsort(-self.log_ei, kind="stable")  # the best candidates first

    def scores(self, rng: np.random.Generator, pending: np.ndarray | None) -> np.ndarray:
        """Lowest first: minus the log of expected improvement times the penalties."""
        if pending is None or not len(pending):
            return -self.log_ei
        mean, sd = self._believed(pending)
        everyone = np.arange(len(self.points))
        return -(self.log_ei + self._penalty(everyone, pending, mean - self.best, sd))

    def pick(
        self,
        rng: np.random.Generator,
        taken: Container[Any],
        pending: np.ndarray | None = None,
    ) -> dict[str, Any] | None:
        """The untaken candidate of the highest penalised score (the lowest of
        ``scores``), scoring candidates in order of expected improvement only until none
        left could beat the best so far (a penalty is at most 1): with hundreds pending a
        pick scores a few chunks, not every candidate against every pending trial."""
        if pending is None or not len(pending):
            return super().pick(rng, taken, pending)
        order, taken_now = self._order, self._taken
        mean, sd = self._believed(pending)
        believed = (pending, mean - self.best, sd)  # gap: how far above the best
        scored = np.full(len(order), -np.inf)  # by rank of expected improvement
        upto = 0  # ranks scored
        while True:
            while upto < len(order):
                live = scored[:upto][~taken_now[order[:upto]]]
                if live.size and self.log_ei[order[upto]] <= live.max():
                    break  # no candidate left can beat the best one scored
                ranks = order[upto : upto + CHUNK]
                scored[upto : upto + len(ranks)] = self.log_ei[ranks] + self._penalty(
                    ranks, *believed
                )
                upto += len(ranks)
            alive = ~taken_now[order[:upto]]
            if not alive.any():
                return None
            i = int(order[int(np.argmax(np.where(alive, scored[:upto], -np.inf)))])
            key, config = self.config(i)
            if key not in taken:
                return dict(config)
            taken_now[i] = True

    def _penalty(
        self, rows: np.ndarray, pending: np.ndarray, gap: np.ndarray, sd: np.ndarray
    ) -> np.ndarray:
        """The log of the penalties of every pending trial (expected ``gap`` above the
        best, give or take ``sd``) at candidates ``rows``."""
        from scipy.special import log_ndtr

        points = self.points[rows]
        squared = (
            np.sum(points**2, axis=1)[:, None]
            + np.sum(pending**2, axis=1)[None, :]
            - 2 * points @ pending.T
        )
        distance = np.sqrt(np.maximum(squared, 0.0))
        z = (self.slope * distance - gap) / sd
        near = z < FAR  # most pairs are far apart: no penalty worth the logarithm
        logs = np.zeros_like(z)
        logs[near] = log_ndtr(z[near])
        return np.asarray(logs.sum(axis=1))

    def _believed(self, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior at the pending trials, each computed once per posterior: from
        one pick to the next, one trial joins them and one leaves."""
        known = self._at
        new = [i for i, row in enumerate(pending) if row.tobytes() not in known]
        if new:
            mean, sd = self.model.mean_sd(pending[new])
            for i, m, s in zip(new, mean, sd, strict=True):
                known[pending[i].tobytes()] = (float(m), float(s))
        found = [known[row.tobytes()] for row in pending]
        return np.array([m for m, _ in found]), np.array([s for _, s in found])


def _largest_slope(kernel: Any, x: np.ndarray, weights: np.ndarray, at: np.ndarray) -> float:
    """The largest norm of the posterior mean's gradient over the points ``at``."""
    gradient = np.zeros_like(at)
    for column in range(at.shape[1]):
        step = np.zeros(at.shape[1])
        step[column] = STEP
        up = kernel(at + step, x) @ weights
        down = kernel(at - step, x) @ weights
        gradient[:, column] = (up - down) / (2 * STEP)
    return float(np.max(np.linalg.norm(gradient, axis=1)))
