"""How members' predictions combine, per benchmark kind, and how the result is judged.

DeepHyper splits an ensemble into a selector and an aggregator; this is the aggregator.
Every kind compares the ensemble with its best single member on the test split, the
member chosen without looking at the test set (lowest validation NLL, or best search
objective where a kind has no validation predictions):

* classification: mean of member probabilities; accuracy, NLL, Brier, ECE with the
  reliability diagram, predictive entropy and mutual information (the epistemic part);
* regression: a uniform mixture of the members' Gaussians, with the aleatoric/epistemic
  variance split and interval coverage;
* sequence (basecaller): mean of member per-step probabilities, decoded; identity and
  per-base confidence;
* generative (GAN): the members' generated maps pooled; the physics statistics of the
  pool, with each statistic's spread across members as bands.

Numpy only: this runs on the login node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from supervisor.config.ensemble import EnsembleConfig
from supervisor.ensemble import uq

COVERAGE_LEVELS = np.round(np.arange(0.05, 1.0, 0.05), 2)
# Metrics judged by their distance to a value, not by their size: a calibrated 90 %
# interval covers 90 % of the targets; one that covers all of them is too wide.
TARGETS = {"coverage_90": 0.9}


@dataclass
class Member:
    """One member: the trial that trained it and the arrays it saved (``ensemble_outputs``)."""

    trial: int  # number in the study that trained it (``study``)
    study: str
    label: str  # e.g. "search #12" or "member #3 (seed 7) of search #12"
    value: float | None  # its first objective, as told to the study
    outputs: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False  # the search's kept model, loaded by a member trial: not trained


@dataclass
class Evaluation:
    """The ensemble against its members, on the test split."""

    kind: str
    headline: str  # the metric that decides "better" (e.g. "nll")
    lower_is_better: dict[str, bool]  # per metric
    ensemble: dict[str, float]
    best_member: dict[str, float]
    best_member_index: int
    members: list[dict[str, float]]
    by_size: list[dict[str, float]]  # the ensemble of the first k members, k = 1..m
    panels: dict[str, Any] = field(default_factory=dict)  # arrays for the report
    # Classifiers: "ensemble" and "best member" scores after temperature scaling ("T").
    calibrated: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate(
    kind: str,
    members: Sequence[Member],
    *,
    maximize: bool = True,
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
    identity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Evaluation:
    """Aggregate ``members`` (a member listed twice counts twice: greedy selection's
    weights). ``maximize``: the direction of the members' ``value``. ``decode`` and
    ``identity`` are the benchmark's, for sequences."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    _same_inputs(members)
    if kind == "classification":
        return _classification(members)
    if kind == "regression":
        return _regression(members)
    if kind == "sequence":
        if decode is None or identity is None:
            raise ValueError("sequence ensembles need the benchmark's decode and identity")
        return _sequence(members, decode, identity)
    if kind == "generative":
        return _generative(members, maximize)
    raise ValueError(f"unknown ensemble kind {kind!r}")


def _stack(members: Sequence[Member], key: str) -> np.ndarray:
    try:
        arrays = [np.asarray(m.outputs[key], dtype=np.float64) for m in members]
    except KeyError:
        missing = next(m.label for m in members if key not in m.outputs)
        raise ValueError(f"{missing}: saved outputs have no {key!r}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"members' {key!r} differ in shape: {sorted(shapes)}")
    return np.stack(arrays)


def _targets(members: Sequence[Member], key: str) -> np.ndarray:
    y = np.asarray(members[0].outputs[key])
    for m in members[1:]:
        if not np.array_equal(np.asarray(m.outputs[key]), y):
            raise ValueError(
                f"{m.label}: its {key} differ from {members[0].label}'s (other data?)"
            )
    return y


def _same_inputs(members: Sequence[Member]) -> None:
    others = other_inputs(members)
    if others:
        first = next(m for m in members if m.outputs.get("x_val_digest") is not None)
        raise ValueError(
            f"{members[others[0]].label} predicted other inputs than {first.label} (trained"
            " with other benchmark options?): their predictions do not average"
        )


def other_inputs(members: Sequence[Member]) -> list[int]:
    """The positions of the members whose predictions are of other inputs than the first's
    (their benchmark options differed: a resume changed a noise level, which may leave the
    targets as they were), told by the digests their workers saved
    (``Benchmark.ensemble_outputs``; a member without them is not told)."""
    out = set()
    for key in ("x_val_digest", "x_test_digest"):
        known = [(i, np.asarray(m.outputs[key])) for i, m in enumerate(members)
                 if m.outputs.get(key) is not None]  # fmt: skip
        out |= {i for i, d in known[1:] if not np.array_equal(d, known[0][1])}
    return sorted(out)


# -- classification -----------------------------------------------------------------------


def _classification(members: Sequence[Member]) -> Evaluation:
    test, y = _stack(members, "test"), _targets(members, "y_test").astype(np.int64)
    val, y_val = _stack(members, "val"), _targets(members, "y_val").astype(np.int64)
    best = int(np.argmin([uq.nll(p, y_val) for p in val]))
    probs = uq.mean_probabilities(test)

    def scores(p: np.ndarray, member_probs: np.ndarray) -> dict[str, float]:
        out = uq.classification_scores(p, y)
        out["entropy"] = float(np.mean(uq.entropy(p)))
        out["mutual_information"] = float(np.mean(uq.mutual_information(member_probs)))
        return out

    ensemble = scores(probs, test)
    members_scores = [scores(p, p[None]) for p in test]
    # Both after temperature scaling fitted on validation data (Guo et al. 2017): an
    # average of under-confident members is more so, and one number on held-out data fixes
    # that without changing a single prediction.
    calibrated = {}
    for name, val_probs, test_probs in (
        ("ensemble", uq.mean_probabilities(val), probs),
        ("best member", val[best], test[best]),
    ):
        t = uq.fit_temperature(val_probs, y_val)
        calibrated[name] = {**uq.classification_scores(uq.temper(test_probs, t), y), "T": t}
    by_size = [{**s, "size": float(k + 1)} for k, s in enumerate(uq.scores_by_size(test, y))]
    correct = probs.argmax(axis=1) == y
    panels = {
        "reliability": {
            "ensemble": uq.calibration(probs, y),
            "best member": uq.calibration(test[best], y),
        },
        "correct": correct,
        "entropy": uq.entropy(probs),
        "mutual_information": uq.mutual_information(test),
        "disagreement": uq.disagreement(test),
    }
    lower = {"accuracy": False, "nll": True, "brier": True, "ece": True}
    return Evaluation(
        "classification", "nll", lower, ensemble, members_scores[best], best,
        members_scores, by_size, panels, calibrated,
    )  # fmt: skip


# -- regression ---------------------------------------------------------------------------


def _regression(members: Sequence[Member]) -> Evaluation:
    test, y = _stack(members, "test"), _targets(members, "y_test").astype(np.float64)
    val, y_val = _stack(members, "val"), _targets(members, "y_val").astype(np.float64)
    if test.ndim != 3 or test.shape[2] != 2:
        raise ValueError(
            f"regression outputs must be [n, 2] (mean, variance), got {test.shape[1:]}"
        )
    best = int(np.argmin([uq.gaussian_nll(v[:, 0], v[:, 1], y_val) for v in val]))

    def scores(part: np.ndarray) -> dict[str, float]:
        mix = uq.mixture(part[..., 0], part[..., 1])
        coverage = uq.interval_coverage(mix.mean, mix.variance, y, [0.9])
        return {
            "nll": uq.mixture_nll(part[..., 0], part[..., 1], y),
            "rmse": float(np.sqrt(np.mean((mix.mean - y) ** 2))),
            "coverage_90": float(coverage[0]),
            "aleatoric": float(np.mean(mix.aleatoric)),
            "epistemic": float(np.mean(mix.epistemic)),
        }

    members_scores = [scores(part[None]) for part in test]
    by_size = [{**scores(test[: k + 1]), "size": float(k + 1)} for k in range(len(test))]
    mix = uq.mixture(test[..., 0], test[..., 1])
    best_mix = uq.mixture(test[best : best + 1, :, 0], test[best : best + 1, :, 1])
    panels = {
        "coverage": {
            "levels": COVERAGE_LEVELS,
            "ensemble": uq.interval_coverage(mix.mean, mix.variance, y, COVERAGE_LEVELS),
            "best member": uq.interval_coverage(
                best_mix.mean, best_mix.variance, y, COVERAGE_LEVELS
            ),
        },
        "aleatoric": mix.aleatoric,
        "epistemic": mix.epistemic,
        "abs_error": np.abs(mix.mean - y),
    }
    lower = {"nll": True, "rmse": True, "coverage_90": True}  # its distance to TARGETS
    return Evaluation(
        "regression", "nll", lower, scores(test), members_scores[best], best,
        members_scores, by_size, panels,
    )  # fmt: skip


# -- sequences (basecaller) ---------------------------------------------------------------


def _sequence(
    members: Sequence[Member],
    decode: Callable[[np.ndarray], np.ndarray],
    identity: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Evaluation:
    test, refs = _stack(_on_one_time_axis(members, "test"), "test"), _targets(members, "y_test")
    val, refs_val = _stack(_on_one_time_axis(members, "val"), "val"), _targets(members, "y_val")
    best = int(np.argmax([np.mean(identity(decode(p), refs_val)) for p in val]))

    def scores(member_probs: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        probs = uq.mean_probabilities(member_probs)
        ident = identity(decode(probs), refs)
        confidence = _base_confidence(probs)
        return (
            {
                "identity": float(np.mean(ident)),
                # Over the reads with a base: a read decoded empty has no confidence.
                "confidence": _mean_finite(confidence),
                "confidence_identity_corr": _corr(confidence, ident),
            },
            ident,
            confidence,
        )

    ensemble, ident, confidence = scores(test)
    members_scores = [scores(p[None])[0] for p in test]
    by_size = [{**scores(test[: k + 1])[0], "size": float(k + 1)} for k in range(len(test))]
    panels = {"identity": ident, "confidence": confidence}
    lower = {"identity": False, "confidence": False, "confidence_identity_corr": False}
    return Evaluation(
        "sequence", "identity", lower, ensemble, members_scores[best], best,
        members_scores, by_size, panels,
    )  # fmt: skip


def _on_one_time_axis(members: Sequence[Member], key: str) -> list[Member]:
    """The members with their per-step outputs ``key`` [n, steps, classes] on the time axis
    of the finest one: members of a searched stride step through the signal at different
    rates, and are averaged at the same time of the signal. A coarser member's step is
    repeated over the finer steps it covers; CTC decoding merges repeats, so each member's
    own reads are unchanged."""
    steps = [np.shape(m.outputs[key])[1] for m in members if np.ndim(m.outputs.get(key, 0)) == 3]
    if len(set(steps)) < 2:
        return list(members)  # one axis already (or not sequences: _stack says what is wrong)
    finest = max(steps)
    aligned = []
    for m in members:
        probs = np.asarray(m.outputs[key])
        at = ((np.arange(finest) + 0.5) * probs.shape[1] / finest).astype(np.int64)
        aligned.append(replace(m, outputs={**m.outputs, key: probs[:, at]}))
    return aligned


def _base_confidence(probs: np.ndarray) -> np.ndarray:
    """Per read, the mean probability of the label emitted at the steps that emit a base
    (not blank, the last class): the per-base confidence of the decoded read."""
    top = probs.argmax(axis=-1)
    emits = top != probs.shape[-1] - 1
    p = uq.per_step_confidence(probs)
    count = emits.sum(axis=1)
    total = np.where(emits, p, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean_finite(a: np.ndarray) -> float:
    keep = np.isfinite(a)
    return float(np.mean(a[keep])) if keep.any() else float("nan")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


# -- generative (GAN) ---------------------------------------------------------------------


def _generative(members: Sequence[Member], maximize: bool) -> Evaluation:
    spectra, hists = _stack(members, "spectrum"), _stack(members, "hist")
    ref_spectrum = _targets(members, "ref_spectrum").astype(np.float64)
    ref_hist = _targets(members, "ref_hist").astype(np.float64)
    k = _targets(members, "k")
    edges = _targets(members, "hist_edges")
    values = [m.value if m.value is not None else np.nan for m in members]
    order = np.nan_to_num(np.asarray(values, float), nan=-np.inf if maximize else np.inf)
    best = int(np.argmax(order) if maximize else np.argmin(order))

    def scores(spectrum: np.ndarray, hist: np.ndarray) -> dict[str, float]:
        ps = float(np.mean(np.abs(spectrum / ref_spectrum - 1.0)))
        ks = _ks_of_histograms(hist, ref_hist)
        return {"ps_error": ps, "hist_ks": ks, "score": ps + ks}

    def pooled(n: int) -> dict[str, float]:
        return scores(spectra[:n].mean(axis=0), hists[:n].sum(axis=0))

    members_scores = [scores(s, h) for s, h in zip(spectra, hists, strict=True)]
    by_size = [{**pooled(n), "size": float(n)} for n in range(1, len(members) + 1)]
    density = hists / np.maximum(hists.sum(axis=1, keepdims=True), 1)
    panels = {
        "k": k,
        "spectra": spectra,
        "ref_spectrum": ref_spectrum,
        "hist_edges": edges,
        "densities": density,
        "ref_density": ref_hist / max(ref_hist.sum(), 1.0),
    }
    lower = {"ps_error": True, "hist_ks": True, "score": True}
    return Evaluation(
        "generative", "score", lower, pooled(len(members)), members_scores[best], best,
        members_scores, by_size, panels,
    )  # fmt: skip


def _ks_of_histograms(a: np.ndarray, b: np.ndarray) -> float:
    """KS distance of two samples given as counts on the same bins, read at the bin
    edges (a lower bound of the exact statistic, exact at the bins' resolution)."""
    ca, cb = np.cumsum(a), np.cumsum(b)
    if ca[-1] <= 0 or cb[-1] <= 0:
        return float("nan")
    return float(np.max(np.abs(ca / ca[-1] - cb / cb[-1])))


@dataclass
class Built:
    config: EnsembleConfig
    select: str  # the selection that ran ("auto" resolved)
    evaluation: Evaluation
    members: list[Member]  # in order; a member chosen twice (greedy) appears twice
    trained: int  # members trained for the ensemble (not reused from the search)
    reused: int
    failed: list[str]  # members that could not be had (their training failed)
    summary_path: Path
    report_path: Path | None
    # ``seeds`` with candidates: each configuration's search trial, mean value and members
    finalists: list[Finalist] = field(default_factory=list)
    # members left out, why each: trained, they broke the space file's constraints, or
    # they predicted other inputs than the first (trained with other benchmark options)
    excluded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Finalist:
    """A configuration ``seeds`` re-evaluated: its search trial, the value the search
    reported (the one seed that made it a finalist) and its members' values."""

    trial: int
    values: tuple[float, ...]
    search_value: float | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")
