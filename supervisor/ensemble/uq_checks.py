"""Input checks of ``supervisor.ensemble.uq``: arrays of the right shape and kind, or a
``ValueError`` that says which argument is wrong and how (shapes as in ``uq``)."""

from __future__ import annotations

import operator

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Softmax outputs in float32 are off [0, 1] and off a unit sum by rounding only.
PROB_TOL = 1e-6
SUM_TOL = 1e-3


def floats(x: npt.ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def probabilities(
    x: npt.ArrayLike, name: str, shape: str, ndim: int, at_least: bool = False
) -> FloatArray:
    """Probabilities with the class axis last: ``ndim`` axes (or more, with ``at_least``)."""
    arr = floats(x, name)
    if arr.ndim < ndim or (arr.ndim > ndim and not at_least):
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected {shape}")
    if arr.min() < -PROB_TOL or arr.max() > 1 + PROB_TOL:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in "
            f"[{arr.min():g}, {arr.max():g}] (pass softmax outputs, not logits)"
        )
    sums = arr.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > SUM_TOL):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(
            f"{name} must sum to 1 over the last (class) axis, found a sum of {worst:g} "
            "(pass softmax outputs, not logits or log-probabilities)"
        )
    return arr


def labels(y: npt.ArrayLike, n: int, c: int) -> IntArray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"y must be integer labels of shape ({n},), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("y must be integer class labels, got non-integral values")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"y must be integer class labels, got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(
            f"y must be class labels in [0, {c}), got values in [{labels.min()}, {labels.max()}]"
        )
    return labels


def probs_labels(probs: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    p = probabilities(probs, "probs", "[n, c]", ndim=2)
    return p, labels(y, p.shape[0], p.shape[1])


def members(member_probs: npt.ArrayLike) -> FloatArray:
    return probabilities(
        member_probs, "member_probs", "[m, n, c] (or [m, n, T, k])", 3, at_least=True
    )


def member_probs_3d(member_probs: npt.ArrayLike) -> FloatArray:
    return probabilities(member_probs, "member_probs", "[m, n, c]", ndim=3)


def bin_count(bins: int) -> int:
    try:
        b = operator.index(bins)
    except TypeError:
        raise ValueError(f"bins must be an integer, got {bins!r}") from None
    if b < 1:
        raise ValueError(f"bins must be >= 1, got {b}")
    return b


def same_shape(name_a: str, a: FloatArray, name_b: str, b: FloatArray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} shapes differ: {a.shape} vs {b.shape}")


def positive(x: npt.ArrayLike, name: str) -> FloatArray:
    arr = floats(x, name)
    if arr.size and arr.min() <= 0:
        raise ValueError(f"{name} must be > 0, got a minimum of {arr.min():g}")
    return arr


def gaussian(
    mean: npt.ArrayLike, variance: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    mu = floats(mean, "mean")
    var = positive(variance, "variance")
    target = floats(y, "y")
    same_shape("mean", mu, "variance", var)
    same_shape("mean", mu, "y", target)
    if mu.size == 0:
        raise ValueError("mean, variance and y are empty")
    return mu, var, target


def gaussian_members(
    means: npt.ArrayLike, variances: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    mu = floats(means, "means")
    var = positive(variances, "variances")
    if mu.ndim != 2:
        raise ValueError(f"means must have shape [m, n], got {mu.shape}")
    same_shape("means", mu, "variances", var)
    if mu.size == 0:
        raise ValueError(f"means is empty (shape {mu.shape}); expected [m, n]")
    return mu, var
