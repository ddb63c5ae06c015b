"""Uncertainty quantification for deep ensembles: aggregation, scores, calibration, splits.

Pure numpy. Shapes: ``m`` members, ``n`` samples, ``c`` classes, ``T`` steps, ``k`` symbols.

Classification members give class probabilities ``[m, n, c]`` (softmax outputs, not logits);
the ensemble predicts their mean. Its predictive entropy splits into the members' mean entropy
(aleatoric: noise every member sees) and the mutual information (epistemic: the members'
disagreement, which shrinks with data). Regression members are Gaussian heads ``(mean,
variance)`` ``[m, n]``; their uniform mixture splits variance the same way (law of total
variance). Sequence models (basecallers) give per-step probabilities ``[m, n, T, k]``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Softmax outputs in float32 are off [0, 1] and off a unit sum by rounding only.
_PROB_TOL = 1e-6
_SUM_TOL = 1e-3
# Greedy selection adds a member only for a real gain, not for rounding noise.
_GAIN_TOL = 1e-12


# ---------------------------------------------------------------------------- validation


def _floats(x: npt.ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _probs(
    x: npt.ArrayLike, name: str, shape: str, ndim: int, at_least: bool = False
) -> FloatArray:
    """Probabilities with the class axis last: ``ndim`` axes (or more, with ``at_least``)."""
    arr = _floats(x, name)
    if arr.ndim < ndim or (arr.ndim > ndim and not at_least):
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected {shape}")
    if arr.min() < -_PROB_TOL or arr.max() > 1 + _PROB_TOL:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in "
            f"[{arr.min():g}, {arr.max():g}] (pass softmax outputs, not logits)"
        )
    sums = arr.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > _SUM_TOL):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(
            f"{name} must sum to 1 over the last (class) axis, found a sum of {worst:g} "
            "(pass softmax outputs, not logits or log-probabilities)"
        )
    return arr


def _labels(y: npt.ArrayLike, n: int, c: int) -> IntArray:
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


def _probs_labels(probs: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    p = _probs(probs, "probs", "[n, c]", ndim=2)
    return p, _labels(y, p.shape[0], p.shape[1])


def _members(member_probs: npt.ArrayLike) -> FloatArray:
    return _probs(member_probs, "member_probs", "[m, n, c] (or [m, n, T, k])", 3, at_least=True)


def _member_probs_3d(member_probs: npt.ArrayLike) -> FloatArray:
    return _probs(member_probs, "member_probs", "[m, n, c]", ndim=3)


def _bins(bins: int) -> int:
    try:
        b = operator.index(bins)
    except TypeError:
        raise ValueError(f"bins must be an integer, got {bins!r}") from None
    if b < 1:
        raise ValueError(f"bins must be >= 1, got {b}")
    return b


def _same_shape(name_a: str, a: FloatArray, name_b: str, b: FloatArray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} shapes differ: {a.shape} vs {b.shape}")


def _variances(x: npt.ArrayLike, name: str) -> FloatArray:
    arr = _floats(x, name)
    if arr.size and arr.min() <= 0:
        raise ValueError(f"{name} must be > 0, got a minimum of {arr.min():g}")
    return arr


def _gaussian(
    mean: npt.ArrayLike, variance: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    mu = _floats(mean, "mean")
    var = _variances(variance, "variance")
    target = _floats(y, "y")
    _same_shape("mean", mu, "variance", var)
    _same_shape("mean", mu, "y", target)
    if mu.size == 0:
        raise ValueError("mean, variance and y are empty")
    return mu, var, target


def _gaussian_members(
    means: npt.ArrayLike, variances: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    mu = _floats(means, "means")
    var = _variances(variances, "variances")
    if mu.ndim != 2:
        raise ValueError(f"means must have shape [m, n], got {mu.shape}")
    _same_shape("means", mu, "variances", var)
    if mu.size == 0:
        raise ValueError(f"means is empty (shape {mu.shape}); expected [m, n]")
    return mu, var


# ---------------------------------------------------------------------------- classification


def mean_probabilities(member_probs: npt.ArrayLike) -> FloatArray:
    """Ensemble prediction: the mean of the members' probabilities over axis 0.

    Accepts ``[m, n, c]`` (classifiers) or ``[m, n, T, k]`` (per-step sequence outputs).
    """
    return _members(member_probs).mean(axis=0)


def accuracy(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Fraction of samples whose argmax class (lowest index on ties) is the label."""
    p, labels = _probs_labels(probs, y)
    return float(np.mean(np.argmax(p, axis=1) == labels))


def nll(probs: npt.ArrayLike, y: npt.ArrayLike, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class, ``-mean(log max(p[y], eps))``.

    A strictly proper score: it rewards calibrated confidence and punishes confident errors
    without bound (``eps`` caps the penalty of a zero probability at ``-log eps``).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    p, labels = _probs_labels(probs, y)
    true = p[np.arange(p.shape[0]), labels]
    return float(-np.mean(np.log(np.clip(true, eps, 1.0))))


def brier(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Multi-class Brier score, ``mean_i sum_c (p_ic - [y_i = c])^2``, in [0, 2].

    Also strictly proper, but bounded: one confident error costs at most 2.
    """
    p, labels = _probs_labels(probs, y)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), labels] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


@dataclass(frozen=True, eq=False)
class Calibration:
    """Reliability-diagram data: per equal-width bin of top-label confidence.

    ``edges`` has ``bins + 1`` entries; ``confidence`` and ``accuracy`` are the mean top-label
    probability and the hit rate of the samples in each bin (NaN where ``count`` is 0).
    """

    ece: float
    edges: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    count: IntArray


def calibration(probs: npt.ArrayLike, y: npt.ArrayLike, bins: int = 15) -> Calibration:
    """Top-label calibration with ``bins`` equal-width bins on [0, 1].

    Bin b holds confidences in ``[b/bins, (b+1)/bins)``; a confidence of exactly 1 goes in the
    last bin. ``ECE = sum_b (count_b / n) |acc_b - conf_b|`` (expected calibration error).
    """
    p, labels = _probs_labels(probs, y)
    nbins = _bins(bins)
    n = p.shape[0]
    conf = p.max(axis=1)
    hit = (np.argmax(p, axis=1) == labels).astype(np.float64)
    # i / bins is the double nearest each edge, so e.g. 0.6 lands in [0.6, 0.7) for bins=10.
    edges = np.arange(nbins + 1, dtype=np.float64) / nbins
    index = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, nbins - 1)
    count = np.bincount(index, minlength=nbins).astype(np.int64)
    conf_sum = np.bincount(index, weights=conf, minlength=nbins)
    hit_sum = np.bincount(index, weights=hit, minlength=nbins)
    filled = count > 0
    mean_conf = np.full(nbins, np.nan)
    mean_acc = np.full(nbins, np.nan)
    mean_conf[filled] = conf_sum[filled] / count[filled]
    mean_acc[filled] = hit_sum[filled] / count[filled]
    gap = np.abs(mean_acc[filled] - mean_conf[filled])
    ece = float(np.sum(count[filled] / n * gap))
    return Calibration(ece=ece, edges=edges, confidence=mean_conf, accuracy=mean_acc, count=count)


def _entropy(p: FloatArray) -> FloatArray:
    logp = np.log(p, out=np.zeros_like(p), where=p > 0)
    # Rounding (and the [0, 1] tolerance) may leave a -0.0 or a tiny negative.
    return np.maximum(-np.sum(p * logp, axis=-1), 0.0)


def entropy(probs: npt.ArrayLike) -> FloatArray:
    """Predictive entropy in nats, ``-sum_c p_c log p_c`` with ``0 log 0 = 0``.

    ``probs`` is ``[n, c]`` (or any ``[..., c]``); the result drops the class axis.
    """
    return _entropy(_probs(probs, "probs", "[n, c] (or [..., c])", 1, at_least=True))


def expected_entropy(member_probs: npt.ArrayLike) -> FloatArray:
    """Mean over members of each member's entropy: the aleatoric part of the uncertainty."""
    return _entropy(_members(member_probs)).mean(axis=0)


def mutual_information(member_probs: npt.ArrayLike) -> FloatArray:
    """Epistemic uncertainty ``H(mean_m p_m) - mean_m H(p_m)`` (BALD), >= 0 by concavity.

    Zero when all members agree; tiny negatives from rounding are clipped to 0.
    """
    p = _members(member_probs)
    mi = _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)
    return np.maximum(mi, 0.0)


def disagreement(member_probs: npt.ArrayLike) -> FloatArray:
    """``[m, m]`` fraction of predictions on which members i and j differ in argmax class.

    A diversity measure: an ensemble of members that always agree is no better than one.
    With ``[m, n, T, k]`` inputs every (sample, step) counts as a prediction.
    """
    p = _members(member_probs)
    m = p.shape[0]
    pred = np.argmax(p, axis=-1).reshape(m, -1)
    out = np.empty((m, m), dtype=np.float64)
    for i in range(m):  # one row at a time: [m, n] memory, not [m, m, n]
        out[i] = np.mean(pred != pred[i], axis=1)
    return out


def classification_scores(
    probs: npt.ArrayLike, y: npt.ArrayLike, bins: int = 15
) -> dict[str, float]:
    """``accuracy``, ``nll``, ``brier`` and ``ece`` (with ``bins`` bins) of one prediction."""
    p, labels = _probs_labels(probs, y)
    return {
        "accuracy": accuracy(p, labels),
        "nll": nll(p, labels),
        "brier": brier(p, labels),
        "ece": calibration(p, labels, bins).ece,
    }


def temper(probs: npt.ArrayLike, temperature: float) -> FloatArray:
    """Probabilities with temperature scaling: ``softmax(log p / T)`` (T > 1 softens)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p = _probs(probs, "probs", "[n, c]", 2)
    logits = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(
    probs: npt.ArrayLike, y: npt.ArrayLike, low: float = 0.05, high: float = 20.0
) -> float:
    """The temperature that minimises the NLL of ``probs`` on held-out labels ``y``
    (Guo et al. 2017), by golden-section search on log T (NLL is unimodal in it). One
    number, fitted on validation data: it changes confidence, never the predicted class."""
    p, labels = _probs_labels(probs, y)
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return nll(temper(p, math.exp(log_t)), labels)

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):  # the bracket shrinks by 0.618 a step: far below 1e-6 in log T
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2.0)


def greedy_nll_selection(
    member_probs: npt.ArrayLike, y: npt.ArrayLike, size: int, replacement: bool = True
) -> list[int]:
    """Ensemble selection (Caruana et al., 2004) that greedily minimises NLL.

    Starts from the member with the lowest NLL, then repeatedly adds the member whose
    addition gives the mean-probability ensemble the lowest NLL; with ``replacement`` a
    member may be added again (a larger weight). Stops at ``size`` members, when no addition
    lowers the NLL, or when no member is left to add. Ties go to the lowest index. Returns the
    member indices in order of addition. Selecting on held-out data, not on training data,
    is the caller's job.
    """
    p = _member_probs_3d(member_probs)
    m, n, c = p.shape
    labels = _labels(y, n, c)
    try:
        target = operator.index(size)
    except TypeError:
        raise ValueError(f"size must be an integer, got {size!r}") from None
    if target < 1:
        raise ValueError(f"size must be >= 1, got {target}")
    eps = 1e-12
    # NLL only depends on the true-class probability: work on [m, n], not [m, n, c].
    true = p[:, np.arange(n), labels]

    def scores(total: FloatArray, k: int) -> FloatArray:
        """NLL of each member added to an ensemble whose true-class sum is ``total``."""
        mean = (total[None, :] + true) / (k + 1)
        return -np.mean(np.log(np.clip(mean, eps, 1.0)), axis=1)

    first = scores(np.zeros(n), 0)
    chosen = [int(np.argmin(first))]  # argmin returns the lowest index on ties
    current = float(first[chosen[0]])
    total = true[chosen[0]].copy()
    available = np.ones(m, dtype=bool)
    available[chosen[0]] = replacement
    while len(chosen) < target and available.any():
        candidate = np.where(available, scores(total, len(chosen)), np.inf)
        best = int(np.argmin(candidate))
        if not candidate[best] < current - _GAIN_TOL:
            break
        chosen.append(best)
        current = float(candidate[best])
        total += true[best]
        available[best] = replacement
    return chosen


def scores_by_size(
    member_probs: npt.ArrayLike, y: npt.ArrayLike, bins: int = 15
) -> list[dict[str, float]]:
    """``classification_scores`` of the mean of the first k members, for k = 1..m.

    The metric-versus-ensemble-size curve; order the members first (e.g. by validation score
    or by ``greedy_nll_selection``) for the curve to mean what you want.
    """
    p = _member_probs_3d(member_probs)
    labels = _labels(y, p.shape[1], p.shape[2])
    running = np.cumsum(p, axis=0)
    return [classification_scores(running[k] / (k + 1), labels, bins) for k in range(p.shape[0])]


# ---------------------------------------------------------------------------- regression


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
    mu, var = _gaussian_members(means, variances)
    return Mixture(mean=mu.mean(axis=0), aleatoric=var.mean(axis=0), epistemic=mu.var(axis=0))


_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(mean: npt.ArrayLike, variance: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Mean Gaussian NLL, ``0.5 log(2 pi s2) + (y - mu)^2 / (2 s2)`` (nats per sample)."""
    mu, var, target = _gaussian(mean, variance, y)
    return float(np.mean(0.5 * (_LOG_2PI + np.log(var)) + (target - mu) ** 2 / (2.0 * var)))


def mixture_nll(means: npt.ArrayLike, variances: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Exact mean NLL of the uniform Gaussian mixture of the members.

    ``-mean_i log((1/m) sum_j N(y_i; mu_ji, s2_ji))`` by log-sum-exp over members, which stays
    finite where every member density underflows. Not the NLL of the moment-matched Gaussian
    (``gaussian_nll(mixture.mean, mixture.variance, y)``), which ignores multi-modality.
    """
    mu, var = _gaussian_members(means, variances)
    target = _floats(y, "y")
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
    mu, var, target = _gaussian(mean, variance, y)
    lv = _floats(levels, "levels")
    if lv.ndim > 1:
        raise ValueError(f"levels must be a 1-D sequence, got shape {lv.shape}")
    lv = np.atleast_1d(lv)
    if lv.size == 0 or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"levels must be non-empty and in (0, 1), got {lv.tolist()}")
    normal = NormalDist()
    z = np.array([normal.inv_cdf(0.5 + 0.5 * float(level)) for level in lv])
    distance = (np.abs(target - mu) / np.sqrt(var)).ravel()
    return np.mean(distance[None, :] <= z[:, None], axis=1).astype(np.float64)


# ---------------------------------------------------------------------------- sequences


def per_step_confidence(probs: npt.ArrayLike) -> FloatArray:
    """``[n, T]`` top probability at every step of ``[n, T, k]`` per-step outputs."""
    return _probs(probs, "probs", "[n, T, k]", ndim=3).max(axis=2)
