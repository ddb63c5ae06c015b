"""The classical baselines of the seed's table (Liu et al. 2016) in scikit-learn.

Logistic regression, k-nearest neighbours, a support-vector machine and a random
forest, all on the same features: the standardised patch (``WeatherData.x_*``),
average-pooled over ``downsample`` x ``downsample`` blocks per channel (trailing rows
and columns that do not fill a block are dropped) and flattened. Pooling keeps the
kernel methods tractable: an RBF SVM or a KNN search on 8,000 raw AR patches would
work on 66,304 features each. A model is a ``Pipeline`` of that feature step and the
classifier, so that it takes patches like the ConvNet does.

Every number worth searching is a hyper-parameter with scikit-learn's default, except
``downsample``, by default the smallest factor that leaves at most ``MAX_FEATURES``
features (tc 2: 2,048 features; ar 6: 1,776; wf 2: 1,170), and ``gamma_scale``: the
SVM's RBF width relative to scikit-learn's "scale" heuristic, 1 / (n_features *
var(features)), so that one search range fits every ``downsample``. The SVM's class
probabilities are the logistic sigmoid of its decision value (``svm_probabilities``):
Platt scaling (``probability=True``) would cost five more fits; accuracy and AUC are
unaffected, and the log-loss is that of this fixed link. scikit-learn is imported
inside the functions only: the driver imports this module without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from benchmarks_sci.hyperparams import Choice, Int, ParamTable, Real
from benchmarks_sci.parallel import available_threads

BASELINES: tuple[str, ...] = ("logreg", "knn", "svm", "random_forest")
MAX_FEATURES = 2048  # of the default downsample: keeps an SVM on 8,000 patches to minutes
_POOL_BLOCK = 256  # samples pooled at a time: bounds the temporaries of cropped views


@dataclass(frozen=True)
class BaselineParams:
    """Every tunable of the baselines; ``APPLIES`` says which method uses which."""

    method: str
    downsample: int = 1  # default_downsample(the task's patch shape) when not given
    C: float = 1.0  # inverse regularisation strength (logreg, svm)
    n_neighbors: int = 5
    weights: str = "uniform"
    kernel: str = "rbf"
    gamma_scale: float = 1.0
    n_estimators: int = 100
    max_depth: int = 0  # 0: unlimited (scikit-learn's None)
    min_samples_leaf: int = 1


APPLIES: dict[str, tuple[str, ...]] = {
    "downsample": BASELINES,
    "C": ("logreg", "svm"),
    "n_neighbors": ("knn",),
    "weights": ("knn",),
    "kernel": ("svm",),
    "gamma_scale": ("svm",),
    "n_estimators": ("random_forest",),
    "max_depth": ("random_forest",),
    "min_samples_leaf": ("random_forest",),
}
_POSITIVE = Real(0.0, math.inf, low_open=True, high_open=True)  # finite too
PARAMS = ParamTable(
    "the baselines",
    {
        "downsample": Int(1),
        "C": _POSITIVE,
        "n_neighbors": Int(1),
        "weights": Choice(("uniform", "distance")),
        "kernel": Choice(("rbf", "linear")),
        "gamma_scale": _POSITIVE,
        "n_estimators": Int(1),
        "max_depth": Int(0),
        "min_samples_leaf": Int(1),
    },
)
assert set(APPLIES) == set(PARAMS.names) == {f.name for f in fields(BaselineParams)} - {"method"}


def default_downsample(shape: tuple[int, int, int]) -> int:
    """The smallest pooling factor that leaves at most ``MAX_FEATURES`` features."""
    height, width, channels = shape
    d = 1
    while (height // d) * (width // d) * channels > MAX_FEATURES:
        d += 1
    return d


def resolve_baseline(
    method: str, params: Mapping[str, Any], shape: tuple[int, int, int]
) -> BaselineParams:
    """Defaults of ``method`` on patches of ``shape`` overridden by ``params`` (without
    ``method``), checked. Raises ValueError naming the parameter: unknown, or of a wrong
    type or range. ``methods.resolve`` first refuses parameters of other methods."""
    values: dict[str, Any] = {"downsample": default_downsample(shape)}
    known = [name for name, used_by in APPLIES.items() if method in used_by]
    values.update(PARAMS.resolve(params, known, owner=f"method {method!r}"))
    if values["downsample"] > min(shape[:2]):
        raise ValueError(
            f"hyper-parameter 'downsample' ({values['downsample']}) is larger than the "
            f"patch ({shape[0]} x {shape[1]})"
        )
    return BaselineParams(method=method, **values)


def pooled_features(x: np.ndarray, downsample: int) -> np.ndarray:
    """Patches [n, H, W, C] -> float32 features [n, (H // d) * (W // d) * C]: the mean
    of each d x d block of each channel (d = ``downsample``), flattened."""
    n, h, w, c = x.shape
    d = downsample
    if d == 1:
        return np.asarray(x, np.float32).reshape(n, -1)
    if d > min(h, w):
        raise ValueError(f"downsample {d} is larger than the patch ({h} x {w})")
    hd, wd = h // d, w // d
    out = np.empty((n, hd * wd * c), np.float32)
    for start in range(0, n, _POOL_BLOCK):
        block = np.asarray(x[start : start + _POOL_BLOCK, : hd * d, : wd * d], np.float32)
        blocks = block.reshape(-1, hd, d, wd, d, c)
        out[start : start + _POOL_BLOCK] = blocks.mean(axis=(2, 4)).reshape(len(block), -1)
    return out


def build_baseline(hp: BaselineParams, seed: int) -> Any:
    """An unfitted ``Pipeline``: pooled features, then the classifier of ``hp.method``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import SVC

    jobs = available_threads()  # the worker's share of the node (OMP_NUM_THREADS)
    classifier: Any
    if hp.method == "logreg":
        classifier = LogisticRegression(C=hp.C, max_iter=1000, random_state=seed)
    elif hp.method == "knn":
        classifier = KNeighborsClassifier(hp.n_neighbors, weights=hp.weights, n_jobs=jobs)
    elif hp.method == "svm":
        # gamma is set in fit_baseline, once the features' size and variance are known.
        classifier = SVC(C=hp.C, kernel=hp.kernel, cache_size=1000, random_state=seed)
    else:
        classifier = RandomForestClassifier(
            hp.n_estimators,
            max_depth=hp.max_depth or None,
            min_samples_leaf=hp.min_samples_leaf,
            n_jobs=jobs,
            random_state=seed,
        )
    features = FunctionTransformer(pooled_features, kw_args={"downsample": hp.downsample})
    return Pipeline([("features", features), ("classifier", classifier)])


def fit_baseline(model: Any, hp: BaselineParams, x: np.ndarray, y: np.ndarray) -> None:
    """Fit the pipeline on patches ``x`` and labels ``y``."""
    features = model.named_steps["features"].fit_transform(x)
    classifier = model.named_steps["classifier"]
    if hp.method == "svm":
        variance = float(features.var()) or 1.0
        classifier.set_params(gamma=hp.gamma_scale / (features.shape[1] * variance))
    classifier.fit(features, y)


def baseline_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities float32 [n, 2] of a fitted pipeline for patches ``x``."""
    features = model.named_steps["features"].transform(x)
    classifier = model.named_steps["classifier"]
    if not hasattr(classifier, "predict_proba"):  # an SVC without Platt scaling
        return svm_probabilities(classifier.decision_function(features))
    return np.asarray(classifier.predict_proba(features), dtype=np.float32)


def svm_probabilities(decision: np.ndarray) -> np.ndarray:
    """[1 - p, p] with p = sigmoid(decision value): class 1 where the decision is > 0."""
    p1 = 1.0 / (1.0 + np.exp(-np.clip(decision, -50.0, 50.0)))
    return np.stack([1.0 - p1, p1], axis=1).astype(np.float32)


def count_baseline_params(model: Any) -> int:
    """Numbers a fitted baseline keeps to predict: weights and intercept (logreg, and
    a linear-kernel svm), the stored training features (knn), support vectors and their
    coefficients (rbf svm), tree nodes (random forest). 0 before fitting."""
    c = model.named_steps["classifier"]
    if hasattr(c, "coef_"):
        return int(c.coef_.size + c.intercept_.size)
    if hasattr(c, "support_vectors_"):
        return int(c.support_vectors_.size + c.dual_coef_.size + c.intercept_.size)
    if hasattr(c, "n_samples_fit_"):
        return int(c.n_samples_fit_ * c.n_features_in_)
    if hasattr(c, "estimators_"):
        return int(sum(tree.tree_.node_count for tree in c.estimators_))
    return 0
