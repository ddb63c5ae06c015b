"""The Gaussian process fits of ``sampler: turbo`` (``supervisor.config.trust_region``):
a Matern kernel fitted on rank-normal scores at fixed counts of results, on a bounded,
representative share of them, so that a proposal is a function of the history."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def fixed_count(n: int, start: int, share: int, least: int) -> int:
    """The largest count <= ``n`` of the sequence ``start``, then each ``1/share`` more
    (at least ``least`` more): a model made at these counts is a function of the history."""
    count = start
    while count + max(least, count // share) <= n:
        count += max(least, count // share)
    return count


def modelled(x: np.ndarray, values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` results: the best sixth of them and the most recent others."""
    if len(values) <= limit:
        return x, values
    order = np.argsort(values, kind="stable")
    keep = set(order[: limit // 6].tolist())
    for i in range(len(values) - 1, -1, -1):
        if len(keep) >= limit:
            break
        keep.add(i)
    rows = np.array(sorted(keep))
    return x[rows], values[rows]


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks as standard normal quantiles: a heavy tail or a scale does not drive the fit."""
    from scipy.stats import norm

    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.asarray(norm.ppf((ranks + 0.5) / len(values)))


def fitted_kernel(x: np.ndarray, y: np.ndarray, noise: tuple[float, float]) -> Any:
    """A Matern 5/2 kernel with a length scale per dimension, a scale and white noise
    (starting at ``noise[0]``, at most ``noise[1]``), fitted to ``y`` at ``x``."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    dims = x.shape[1]
    shape = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(dims, 0.5), (1e-2, 20.0), 2.5)
    white = WhiteKernel(noise[0], (1e-6, noise[1]))
    model = GaussianProcessRegressor(shape + white, random_state=0)
    with warnings.catch_warnings():  # convergence warnings at the bounds
        warnings.simplefilter("ignore")
        model.fit(x, y)
    return model.kernel_


def length_scales(kernel: Any, dims: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(kernel.k1.k2.length_scale, dtype=float), (dims,))
