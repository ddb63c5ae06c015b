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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from supervisor.ensemble import uq_checks as check
from supervisor.ensemble.uq_checks import FloatArray, IntArray
from supervisor.ensemble.uq_regression import (
    Mixture,
    gaussian_nll,
    interval_coverage,
    mixture,
    mixture_nll,
)

__all__ = [
    "Calibration",
    "Mixture",
    "accuracy",
    "brier",
    "calibration",
    "classification_scores",
    "disagreement",
    "entropy",
    "expected_entropy",
    "fit_temperature",
    "gaussian_nll",
    "greedy_nll_selection",
    "interval_coverage",
    "mean_probabilities",
    "mixture",
    "mixture_nll",
    "mutual_information",
    "nll",
    "per_step_confidence",
    "scores_by_size",
    "temper",
]

# Greedy selection adds a member only for a real gain, not for rounding noise.
_GAIN_TOL = 1e-12


# ---------------------------------------------------------------------------- classification


def mean_probabilities(member_probs: npt.ArrayLike) -> FloatArray:
    """Ensemble prediction: the mean of the members' probabilities over axis 0.

    Accepts ``[m, n, c]`` (classifiers) or ``[m, n, T, k]`` (per-step sequence outputs).
    """
    return check.members(member_probs).mean(axis=0)


def accuracy(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Fraction of samples whose argmax class (lowest index on ties) is the label."""
    p, labels = check.probs_labels(probs, y)
    return float(np.mean(np.argmax(p, axis=1) == labels))


def nll(probs: npt.ArrayLike, y: npt.ArrayLike, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class, ``-mean(log max(p[y], eps))``.

    A strictly proper score: it rewards calibrated confidence and punishes confident errors
    without bound (``eps`` caps the penalty of a zero probability at ``-log eps``).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    p, labels = check.probs_labels(probs, y)
    true = p[np.arange(p.shape[0]), labels]
    return float(-np.mean(np.log(np.clip(true, eps, 1.0))))


def brier(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Multi-class Brier score, ``mean_i sum_c (p_ic - [y_i = c])^2``, in [0, 2].

    Also strictly proper, but bounded: one confident error costs at most 2.
    """
    p, labels = check.probs_labels(probs, y)
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
    p, labels = check.probs_labels(probs, y)
    nbins = check.bin_count(bins)
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
    return _entropy(check.probabilities(probs, "probs", "[n, c] (or [..., c])", 1, at_least=True))


def expected_entropy(member_probs: npt.ArrayLike) -> FloatArray:
    """Mean over members of each member's entropy: the aleatoric part of the uncertainty."""
    return _entropy(check.members(member_probs)).mean(axis=0)


def mutual_information(member_probs: npt.ArrayLike) -> FloatArray:
    """Epistemic uncertainty ``H(mean_m p_m) - mean_m H(p_m)`` (BALD), >= 0 by concavity.

    Zero when all members agree; tiny negatives from rounding are clipped to 0.
    """
    p = check.members(member_probs)
    mi = _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)
    return np.maximum(mi, 0.0)


def disagreement(member_probs: npt.ArrayLike) -> FloatArray:
    """``[m, m]`` fraction of predictions on which members i and j differ in argmax class.

    A diversity measure: an ensemble of members that always agree is no better than one.
    With ``[m, n, T, k]`` inputs every (sample, step) counts as a prediction.
    """
    p = check.members(member_probs)
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
    p, labels = check.probs_labels(probs, y)
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
    p = check.probabilities(probs, "probs", "[n, c]", 2)
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
    p, labels = check.probs_labels(probs, y)
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
    p = check.member_probs_3d(member_probs)
    m, n, c = p.shape
    labels = check.labels(y, n, c)
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
    p = check.member_probs_3d(member_probs)
    labels = check.labels(y, p.shape[1], p.shape[2])
    running = np.cumsum(p, axis=0)
    return [classification_scores(running[k] / (k + 1), labels, bins) for k in range(p.shape[0])]


# ---------------------------------------------------------------------------- sequences


def per_step_confidence(probs: npt.ArrayLike) -> FloatArray:
    """``[n, T]`` top probability at every step of ``[n, T, k]`` per-step outputs."""
    return check.probabilities(probs, "probs", "[n, T, k]", ndim=3).max(axis=2)
