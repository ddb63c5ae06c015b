"""The mathematics of supervisor.ensemble.uq on cases with known answers (numpy only, fast)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from supervisor.ensemble import uq


def _binary(p_true: Any) -> np.ndarray:
    """[n, 2] probabilities giving class 0 (the label in these cases) probability ``p_true``."""
    p = np.asarray(p_true, dtype=np.float64)
    return np.stack([p, 1.0 - p], axis=-1)


def _sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from that row's class probabilities."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), probs.shape[1] - 1)


# ---------------------------------------------------------------------------- scores


def test_perfect_one_hot_predictions_score_perfectly() -> None:
    y = np.array([0, 2, 1, 2, 0])
    probs = np.eye(3)[y]
    scores = uq.classification_scores(probs, y)
    assert set(scores) == {"accuracy", "nll", "brier", "ece"}
    assert scores["accuracy"] == 1.0
    assert scores["nll"] == pytest.approx(0.0, abs=1e-12)
    assert scores["brier"] == 0.0
    assert scores["ece"] == 0.0


def test_uniform_predictions_give_log_c_and_c_minus_1_over_c() -> None:
    c = 4
    y = np.array([0, 1, 2, 3, 3, 1])
    probs = np.full((y.size, c), 1.0 / c)
    assert uq.nll(probs, y) == pytest.approx(math.log(c))
    assert uq.brier(probs, y) == pytest.approx((c - 1) / c)
    np.testing.assert_allclose(uq.entropy(probs), math.log(c))
    # argmax ties go to class 0: right only on the sample labelled 0.
    assert uq.accuracy(probs, y) == pytest.approx(1 / 6)


def test_confident_wrong_prediction_costs_minus_log_eps_and_brier_two() -> None:
    probs = np.array([[1.0, 0.0]])
    y = np.array([1])
    assert uq.nll(probs, y) == pytest.approx(-math.log(1e-12))
    assert uq.nll(probs, y, eps=1e-3) == pytest.approx(-math.log(1e-3))
    assert uq.brier(probs, y) == pytest.approx(2.0)
    assert uq.accuracy(probs, y) == 0.0


def test_hand_computed_scores() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    y = np.array([0, 1])
    assert uq.nll(probs, y) == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)
    first = 0.3**2 + 0.2**2 + 0.1**2
    second = 0.1**2 + 0.7**2 + 0.6**2
    assert uq.brier(probs, y) == pytest.approx((first + second) / 2)
    assert uq.accuracy(probs, y) == 0.5
    # Labels stored as integral floats (as some loaders give them) are accepted.
    assert uq.accuracy(probs, y.astype(np.float32)) == 0.5


# ---------------------------------------------------------------------------- calibration


def test_calibrated_predictions_have_near_zero_ece_overconfident_large() -> None:
    rng = np.random.default_rng(0)
    n, c = 200_000, 4
    probs = rng.dirichlet(np.full(c, 0.7), size=n)
    y = _sample_labels(probs, rng)
    cal = uq.calibration(probs, y)
    assert cal.ece < 0.01
    filled = cal.count > 500
    np.testing.assert_allclose(cal.accuracy[filled], cal.confidence[filled], atol=0.03)

    sharp = probs**4
    sharp /= sharp.sum(axis=1, keepdims=True)
    over = uq.calibration(sharp, y)
    assert over.ece > 0.1
    filled = over.count > 500
    # Overconfident: claimed confidence above the hit rate in every well-filled bin.
    assert np.all(over.confidence[filled] > over.accuracy[filled])


def test_calibration_bins_by_hand() -> None:
    probs = _binary([0.9, 0.9, 0.6, 0.6, 1.0])
    y = np.array([0, 1, 0, 0, 0])
    cal = uq.calibration(probs, y, bins=10)
    np.testing.assert_allclose(cal.edges, np.linspace(0.0, 1.0, 11))
    # 0.6 lands in [0.6, 0.7); 1.0 in the last bin [0.9, 1.0] together with the 0.9s.
    expected_count = np.zeros(10, dtype=np.int64)
    expected_count[[6, 9]] = [2, 3]
    np.testing.assert_array_equal(cal.count, expected_count)
    assert cal.confidence[6] == pytest.approx(0.6)
    assert cal.accuracy[6] == 1.0
    assert cal.confidence[9] == pytest.approx((0.9 + 0.9 + 1.0) / 3)
    assert cal.accuracy[9] == pytest.approx(2 / 3)
    empty = cal.count == 0
    assert np.isnan(cal.confidence[empty]).all() and np.isnan(cal.accuracy[empty]).all()
    expected_ece = 2 / 5 * 0.4 + 3 / 5 * abs(2 / 3 - 2.8 / 3)
    assert cal.ece == pytest.approx(expected_ece)
    assert uq.classification_scores(probs, y, bins=10)["ece"] == pytest.approx(expected_ece)


def test_single_bin_ece_is_gap_between_mean_confidence_and_accuracy() -> None:
    probs = _binary([0.8, 0.8, 0.8, 0.8])
    y = np.array([0, 0, 1, 1])
    cal = uq.calibration(probs, y, bins=1)
    assert cal.count.tolist() == [4]
    assert cal.ece == pytest.approx(0.3)


# ---------------------------------------------------------------------------- decomposition


def test_entropy_of_one_hot_is_zero_not_nan() -> None:
    h = uq.entropy(np.eye(3))
    assert not np.isnan(h).any()
    np.testing.assert_array_equal(h, 0.0)
    assert uq.entropy(_binary([0.5]))[0] == pytest.approx(math.log(2))


def test_identical_members_have_no_epistemic_uncertainty() -> None:
    rng = np.random.default_rng(1)
    one = rng.dirichlet(np.ones(3), size=50)
    members = np.stack([one, one, one])
    np.testing.assert_allclose(uq.mean_probabilities(members), one)
    # Zero up to rounding: the mean of three equal floats need not be that float exactly.
    np.testing.assert_allclose(uq.mutual_information(members), 0.0, atol=1e-12)
    np.testing.assert_allclose(uq.expected_entropy(members), uq.entropy(one))
    np.testing.assert_array_equal(uq.disagreement(members), np.zeros((3, 3)))
    means = np.stack([rng.normal(size=20)] * 4)
    np.testing.assert_allclose(uq.mixture(means, np.ones_like(means)).epistemic, 0.0, atol=1e-15)


def test_confident_members_that_disagree_are_purely_epistemic() -> None:
    members = np.stack([np.eye(2)[[0, 0, 1]], np.eye(2)[[1, 0, 1]]])  # differ on sample 0
    np.testing.assert_allclose(uq.mean_probabilities(members)[0], [0.5, 0.5])
    np.testing.assert_array_equal(uq.expected_entropy(members), 0.0)
    np.testing.assert_allclose(uq.mutual_information(members), [math.log(2), 0.0, 0.0])
    np.testing.assert_allclose(uq.disagreement(members), [[0.0, 1 / 3], [1 / 3, 0.0]])


def test_entropy_splits_into_aleatoric_plus_epistemic() -> None:
    rng = np.random.default_rng(2)
    members = rng.dirichlet(np.ones(5), size=(6, 40))
    mi = uq.mutual_information(members)
    assert np.all(mi >= 0) and np.all(mi > 0)
    total = uq.entropy(uq.mean_probabilities(members))
    np.testing.assert_allclose(uq.expected_entropy(members) + mi, total)
    d = uq.disagreement(members)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0.0)


# ---------------------------------------------------------------------------- selection


def test_greedy_selection_picks_two_complementary_members() -> None:
    n = 100
    y = np.zeros(n, dtype=np.int64)
    half = n // 2
    a = _binary(np.r_[np.full(half, 0.95), np.full(half, 0.3)])  # right on the first half
    b = _binary(np.r_[np.full(half, 0.3), np.full(half, 0.94)])  # right on the second half
    flat = _binary(np.full(n, 0.5))
    members = np.stack([flat, b, a])
    singles = [uq.nll(p, y) for p in members]
    assert int(np.argmin(singles)) == 2
    picked = uq.greedy_nll_selection(members, y, size=10)
    assert picked == [2, 1]
    assert uq.nll(uq.mean_probabilities(members[picked]), y) < min(singles) - 0.1


def test_greedy_selection_repeats_a_member_with_replacement_only() -> None:
    n, few = 100, 20
    y = np.zeros(n, dtype=np.int64)
    strong = _binary(np.r_[np.full(n - few, 0.9), np.full(few, 0.02)])
    helper = _binary(np.r_[np.full(n - few, 0.4), np.full(few, 0.9)])
    members = np.stack([strong, helper])
    assert uq.greedy_nll_selection(members, y, size=10) == [1, 0, 0]  # weights 2:1
    assert uq.greedy_nll_selection(members, y, size=10, replacement=False) == [1, 0]
    assert uq.greedy_nll_selection(members, y, size=2) == [1, 0]
    assert uq.greedy_nll_selection(members, y, size=1) == [1]


def test_greedy_selection_never_worse_than_best_member_and_breaks_ties_low() -> None:
    rng = np.random.default_rng(3)
    n, c = 300, 5
    y = rng.integers(0, c, size=n)
    logits = rng.normal(size=(8, n, c)) * rng.uniform(0.5, 4.0, size=(8, 1, 1))
    logits[:, np.arange(n), y] += 1.0
    members = np.exp(logits)
    members /= members.sum(axis=2, keepdims=True)
    singles = [uq.nll(p, y) for p in members]
    picked = uq.greedy_nll_selection(members, y, size=6)
    assert picked[0] == int(np.argmin(singles))
    assert 1 <= len(picked) <= 6
    path = [uq.nll(members[picked[:k]].mean(axis=0), y) for k in range(1, len(picked) + 1)]
    assert all(later < earlier for earlier, later in itertools.pairwise(path))
    assert path[-1] <= min(singles)
    best = members[picked[0]]
    worst = members[int(np.argmax(singles))]
    # Tied best members: the lower index wins; a copy of the same member adds nothing.
    assert uq.greedy_nll_selection(np.stack([worst, best, best]), y, size=3)[0] == 1
    assert uq.greedy_nll_selection(np.stack([best, best]), y, size=5) == [0]


def test_scores_by_size_is_the_running_ensemble() -> None:
    rng = np.random.default_rng(4)
    members = rng.dirichlet(np.ones(3), size=(4, 30))
    y = rng.integers(0, 3, size=30)
    curve = uq.scores_by_size(members, y, bins=5)
    assert len(curve) == 4
    assert curve[0] == pytest.approx(uq.classification_scores(members[0], y, bins=5))
    assert curve[2] == pytest.approx(uq.classification_scores(members[:3].mean(axis=0), y, 5))
    assert curve[-1]["nll"] == pytest.approx(uq.nll(members.mean(axis=0), y))


# ---------------------------------------------------------------------------- regression


def test_mixture_of_two_unit_gaussians_splits_variance() -> None:
    mix = uq.mixture([[0.0], [2.0]], [[1.0], [1.0]])
    assert mix.mean.tolist() == [1.0]
    assert mix.aleatoric.tolist() == [1.0]
    assert mix.epistemic.tolist() == [1.0]
    assert mix.variance.tolist() == [2.0]


def test_gaussian_nll_known_values() -> None:
    assert uq.gaussian_nll([0.0], [1.0], [0.0]) == pytest.approx(0.5 * math.log(2 * math.pi))
    expected = 0.5 * math.log(2 * math.pi * 4.0) + 9.0 / 8.0
    assert uq.gaussian_nll([1.0], [4.0], [4.0]) == pytest.approx(expected)


def test_mixture_nll_is_exact() -> None:
    rng = np.random.default_rng(5)
    mean, var, y = rng.normal(size=10), rng.uniform(0.1, 2.0, size=10), rng.normal(size=10)
    assert uq.mixture_nll(mean[None], var[None], y) == pytest.approx(uq.gaussian_nll(mean, var, y))

    means, variances, target = [[0.0], [2.0]], [[1.0], [0.25]], [0.5]
    density = 0.5 * (NormalDist(0.0, 1.0).pdf(0.5) + NormalDist(2.0, 0.5).pdf(0.5))
    assert uq.mixture_nll(means, variances, target) == pytest.approx(-math.log(density))
    # Bimodal: the exact mixture beats its moment-matched Gaussian at a mode.
    mix = uq.mixture([[-3.0], [3.0]], [[0.1], [0.1]])
    assert uq.mixture_nll([[-3.0], [3.0]], [[0.1], [0.1]], [3.0]) < uq.gaussian_nll(
        mix.mean, mix.variance, [3.0]
    )
    # Far from every member the densities underflow; log-sum-exp keeps the NLL finite.
    far = uq.mixture_nll([[0.0], [1.0]], [[1e-4], [1e-4]], [100.0])
    assert math.isfinite(far)
    assert far == pytest.approx(-math.log(0.5) + uq.gaussian_nll([1.0], [1e-4], [100.0]))


def test_interval_coverage_matches_level_when_calibrated() -> None:
    rng = np.random.default_rng(6)
    n = 100_000
    mean = rng.normal(size=n)
    var = rng.uniform(0.2, 3.0, size=n)
    y = mean + rng.normal(size=n) * np.sqrt(var)
    levels = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    coverage = uq.interval_coverage(mean, var, y, levels)
    assert coverage.shape == levels.shape
    np.testing.assert_allclose(coverage, levels, atol=0.01)
    # Variance four times too small: intervals half as wide, well under the level.
    narrow = uq.interval_coverage(mean, var / 4, y, levels)
    assert np.all(narrow < levels - 0.1)
    exact = [2 * NormalDist().cdf(0.5 * NormalDist().inv_cdf(0.5 + lv / 2)) - 1 for lv in levels]
    np.testing.assert_allclose(narrow, exact, atol=0.01)


# ---------------------------------------------------------------------------- sequences


def test_sequence_probabilities() -> None:
    rng = np.random.default_rng(7)
    members = rng.dirichlet(np.ones(5), size=(3, 4, 6))  # [m, n, T, k]
    mean = uq.mean_probabilities(members)
    assert mean.shape == (4, 6, 5)
    np.testing.assert_allclose(mean, members.mean(axis=0))
    conf = uq.per_step_confidence(mean)
    assert conf.shape == (4, 6)
    np.testing.assert_array_equal(conf, mean.max(axis=2))
    assert uq.entropy(mean).shape == (4, 6)
    assert uq.mutual_information(members).shape == (4, 6)
    assert uq.disagreement(members).shape == (3, 3)


# ---------------------------------------------------------------------------- bad inputs

_P = np.full((3, 2), 0.5)
_Y = np.array([0, 1, 0])
_M = np.stack([_P, _P])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: uq.accuracy(_P, _Y[:2]), "shape"),
        (lambda: uq.nll(_P[None], _Y), "shape"),
        (lambda: uq.brier(_P, np.array([0, 2, 0])), r"labels in \[0, 2\)"),
        (lambda: uq.brier(_P, np.array([0.0, 0.5, 1.0])), "integer"),
        (lambda: uq.nll(np.array([[1.5, -0.5]] * 3), _Y), r"in \[0, 1\]"),
        (lambda: uq.nll(np.full((3, 2), 0.2), _Y), "sum to 1"),
        (lambda: uq.nll(np.full((3, 2), np.nan), _Y), "NaN"),
        (lambda: uq.calibration(_P, _Y, bins=0), "bins"),
        (lambda: uq.mean_probabilities(_P), "shape"),
        (lambda: uq.mutual_information(_P), "shape"),
        (lambda: uq.disagreement(np.zeros((2, 0, 3))), "empty"),
        (lambda: uq.greedy_nll_selection(_M, _Y, size=0), "size"),
        (lambda: uq.greedy_nll_selection(_M, _Y[:2], size=2), "shape"),
        (lambda: uq.scores_by_size(_P, _Y), "shape"),
        (lambda: uq.per_step_confidence(_P), "shape"),
        (lambda: uq.mixture([[0.0, 1.0]], [[1.0]]), "shapes differ"),
        (lambda: uq.mixture([0.0, 1.0], [1.0, 1.0]), "shape"),
        (lambda: uq.mixture([[0.0]], [[0.0]]), "> 0"),
        (lambda: uq.gaussian_nll([0.0, 1.0], [1.0, 1.0], [0.0]), "shapes differ"),
        (lambda: uq.mixture_nll([[0.0, 1.0]], [[1.0, 1.0]], [0.0]), "shape"),
        (lambda: uq.interval_coverage([0.0], [1.0], [0.0], [0.5, 1.0]), r"in \(0, 1\)"),
    ],
)
def test_bad_inputs_raise_value_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_temperature_scaling_recovers_a_known_sharpening() -> None:
    """Labels drawn from calibrated p, shown as p**3 renormalised (= softmax(3 log p)):
    the fitted temperature is 3, and scaling fixes ECE without changing a prediction."""
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(4), 50_000)
    y = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    sharp = p**3 / (p**3).sum(axis=1, keepdims=True)
    t = uq.fit_temperature(sharp, y)
    assert t == pytest.approx(3.0, rel=0.05)
    fixed = uq.temper(sharp, t)
    assert uq.calibration(fixed, y).ece < 0.01 < uq.calibration(sharp, y).ece
    assert np.array_equal(fixed.argmax(axis=1), sharp.argmax(axis=1))
    np.testing.assert_allclose(uq.temper(p, 1.0), p, atol=1e-9)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        uq.temper(p, 0.0)
