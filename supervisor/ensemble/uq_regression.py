"""Regression ensembles of Gaussian heads ``(mean, variance)`` ``[m, n]``: the uniform
mixture's moments (its variance split by the law of total variance), Gaussian and mixture
NLL, and interval coverage. Re-exported by ``supervisor.ensemble.uq``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from supervisor.ensemble import uq_checks as check
from supervisor.ensemble.uq_checks import FloatArray

__all__ = ["Mixture", "gaussian_nll", "interval_coverage", "mixture", "mixture_nll"]


@dataclass(frozen=True, eq=False)
class Mixture:
    """Moments of a uniform mixture of Gaussian members, per sample.

    ``aleatoric`` is the mean member variance (noise), ``epistemic`` the spread of the member
    means (model uncertainty); their sum is the mixture's variance (law of total variance).
    """

    mean: FloatArray
    aleatoric: FloatArray
    epistemic: FloatArray

    @property
    def variance(self) -> FloatArray:
        """Total predictive variance, ``aleatoric + epistemic``."""
        return self.aleatoric + self.epistemic


def mixture(means: npt.ArrayLike, variances: npt.ArrayLike) -> Mixture:
    """Mean and variance split of the uniform mixture of members ``N(means[j], variances[j])``.

    ``mean = E_j mu_j``, ``aleatoric = E_j s2_j``, ``epistemic = Var_j mu_j`` (ddof 0).
    """
    mu, var = check.gaussian_members(means, variances)
    return Mixture(mean=mu.mean(axis=0), aleatoric=var.mean(axis=0), epistemic=mu.var(axis=0))


_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(mean: npt.ArrayLike, variance: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Mean Gaussian NLL, ``0.5 log(2 pi s2) + (y - mu)^2 / (2 s2)`` (nats per sample)."""
    mu, var, target = check.gaussian(mean, variance, y)
    return float(np.mean(0.5 * (_LOG_2PI + np.log(var)) + (target - mu) ** 2 / (2.0 * var)))


def mixture_nll(means: npt.ArrayLike, variances: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Exact mean NLL of the uniform Gaussian mixture of the members.

    ``-mean_i log((1/m) sum_j N(y_i; mu_ji, s2_ji))`` by log-sum-exp over members, which stays
    finite where every member density underflows. Not the NLL of the moment-matched Gaussian
    (``gaussian_nll(mixture.mean, mixture.variance, y)``), which ignores multi-modality.
    """
    mu, var = check.gaussian_members(means, variances)
    target = check.floats(y, "y")
    if target.shape != mu.shape[1:]:
        raise ValueError(f"y must have shape ({mu.shape[1]},), got {target.shape}")
    logpdf = -0.5 * (_LOG_2PI + np.log(var)) - (target[None, :] - mu) ** 2 / (2.0 * var)
    top = logpdf.max(axis=0)
    log_mix = top + np.log(np.mean(np.exp(logpdf - top[None, :]), axis=0))
    return float(-np.mean(log_mix))


def interval_coverage(
    mean: npt.ArrayLike,
    variance: npt.ArrayLike,
    y: npt.ArrayLike,
    levels: Sequence[float] | npt.ArrayLike,
) -> FloatArray:
    """Fraction of ``y`` inside the central normal interval ``mu +- z_{(1+l)/2} s`` per level l.

    A calibrated predictive variance covers about l of the targets at every level: plot it
    against ``levels`` (a coverage curve; below the diagonal means overconfident).
    """
    mu, var, target = check.gaussian(mean, variance, y)
    lv = check.floats(levels, "levels")
    if lv.ndim > 1:
        raise ValueError(f"levels must be a 1-D sequence, got shape {lv.shape}")
    lv = np.atleast_1d(lv)
    if lv.size == 0 or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"levels must be non-empty and in (0, 1), got {lv.tolist()}")
    normal = NormalDist()
    z = np.array([normal.inv_cdf(0.5 + 0.5 * float(level)) for level in lv])
    distance = (np.abs(target - mu) / np.sqrt(var)).ravel()
    return np.mean(distance[None, :] <= z[:, None], axis=1).astype(np.float64)
