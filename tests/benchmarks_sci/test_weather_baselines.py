"""The classical baselines of the weather benchmark and the ``method`` hyper-parameter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.weather import WeatherBenchmark
from benchmarks_sci.weather.baselines import (
    BASELINES,
    BaselineParams,
    pooled_features,
    svm_probabilities,
)
from benchmarks_sci.weather.benchmark import WeatherData
from benchmarks_sci.weather.methods import METHODS, resolve
from supervisor.config import space
from supervisor.config.params import is_active

ROOT = Path(__file__).resolve().parents[2]
TINY = {"task": "wf", "n_train": 240, "n_val": 120, "n_test": 120, "difficulty": 0.0}
# Small settings of every baseline, so that each fits in well under a second.
QUICK: dict[str, dict[str, Any]] = {
    "logreg": {"C": 0.01},
    "knn": {"n_neighbors": 7, "weights": "distance"},
    "svm": {"C": 1.0, "gamma_scale": 0.5},
    "random_forest": {"n_estimators": 20, "max_depth": 8},
}


@pytest.fixture(scope="module")
def tiny() -> tuple[WeatherBenchmark, WeatherData]:
    bench = WeatherBenchmark(TINY)
    return bench, bench.load_data(seed=0)


def fit(
    bench: WeatherBenchmark, data: WeatherData, params: dict[str, Any], epochs: int = 3
) -> tuple[Any, dict[str, float], list[tuple[int, dict[str, float]]]]:
    reports: list[tuple[int, dict[str, float]]] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reports.append((epoch, metrics))
        return False

    model = bench.build_model(params, seed=0)
    return model, bench.fit(model, data, params, epochs, report), reports


@pytest.mark.parametrize("method", BASELINES)
def test_each_baseline_fits_once_and_predicts_probabilities(
    tiny: tuple[WeatherBenchmark, WeatherData], method: str
) -> None:
    bench, data = tiny
    params = {"method": method, "downsample": 2, **QUICK[method]}
    assert bench.count_params(bench.build_model(params, seed=0)) == 0  # nothing learned yet
    model, metrics, reports = fit(bench, data, params)
    # No epochs: one report, as epoch 0, of the returned validation scores.
    assert [epoch for epoch, _ in reports] == [0]
    assert reports[0][1] == {k: metrics[k] for k in ("val_loss", "val_accuracy", "val_auc")}
    assert set(metrics) == set(WeatherBenchmark.metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["val_accuracy"] > 0.6 and metrics["val_auc"] > 0.6  # it learned
    probs = bench.predict(model, data.x_test)
    assert probs.shape == (120, 2) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6) and (probs >= 0).all()
    accuracy = float(np.mean(probs.argmax(axis=1) == data.y_test))
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    # Probabilities agree with the classifier's own decisions.
    features = pooled_features(data.x_test, 2)
    classifier = model.named_steps["classifier"]
    assert np.mean(probs.argmax(axis=1) == classifier.predict(features)) > 0.99
    # n_params: the numbers the fitted model keeps to predict.
    n_features = features.shape[1]
    kept = {
        "logreg": n_features + 1,  # weights and intercept
        "knn": 240 * n_features,  # the training set
        "svm": len(getattr(classifier, "support_", [])) * (n_features + 1) + 1,
        "random_forest": sum(t.tree_.node_count for t in getattr(classifier, "estimators_", [])),
    }
    assert bench.count_params(model) == kept[method] > 1


def test_baselines_are_reproducible_under_a_seed(
    tiny: tuple[WeatherBenchmark, WeatherData],
) -> None:
    bench, data = tiny
    params = {"method": "random_forest", **QUICK["random_forest"]}

    def probs(seed: int) -> np.ndarray:
        model = bench.build_model(params, seed)
        bench.fit(model, data, params, 1, lambda e, m: False)
        return bench.predict(model, data.x_val)

    assert np.array_equal(probs(3), probs(3))
    assert not np.array_equal(probs(3), probs(4))


def test_default_params_of_every_method_resolve_on_every_task() -> None:
    # The default pooling leaves at most 2,048 features: 16x16x8, 24x37x2, 13x30x3.
    for task, downsample in {"tc": 2, "ar": 6, "wf": 2}.items():
        for method in BASELINES:
            hp = resolve({"method": method}, task)
            assert isinstance(hp, BaselineParams)
            assert hp.method == method and hp.downsample == downsample
    assert resolve({}, "ar") == resolve({"method": "cnn"}, "ar")  # cnn is the default


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "svc"}, r"'method' must be one of .*did you mean 'svm'"),
        ({"method": "knn", "n_neighbours": 3}, r"'n_neighbours'.*did you mean 'n_neighbors'"),
        ({"method": "knn", "C": 1.0}, r"'C' applies to method logreg, svm, not 'knn'"),
        ({"method": "svm", "learning_rate": 0.1}, r"'learning_rate' applies to method cnn"),
        ({"n_estimators": 10}, r"'n_estimators' applies to method random_forest, not 'cnn'"),
        ({"method": "cnn", "downsample": 2}, r"'downsample' applies to .*not 'cnn'"),
        ({"method": "logreg", "C": 0}, r"'C' must be a positive number"),
        ({"method": "svm", "kernel": "poly"}, r"'kernel' must be one of rbf, linear"),
        ({"method": "knn", "n_neighbors": 0}, r"'n_neighbors' must be an integer >= 1"),
        ({"method": "knn", "weights": "inverse"}, r"'weights' must be one of uniform"),
        ({"method": "random_forest", "max_depth": -1}, r"'max_depth' must be an integer >= 0"),
        ({"method": "random_forest", "n_estimators": 2.5}, r"'n_estimators' must be an integer"),
        ({"method": "logreg", "downsample": True}, r"'downsample' must be a number"),
        ({"method": "svm", "gamma_scale": float("inf")}, r"'gamma_scale' must be a positive"),
        ({"method": "knn", "downsample": 30}, r"'downsample' \(30\) is larger than .*27 x 60"),
    ],
)
def test_bad_params_are_errors_naming_them(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeatherBenchmark(TINY).build_model(params, seed=0)


def test_pooled_features_average_blocks_and_drop_the_remainder() -> None:
    x = np.random.default_rng(0).normal(size=(300, 7, 9, 2)).astype(np.float32)
    pooled = pooled_features(x, 3)  # 300 > the 256 samples pooled at a time
    expected = np.stack(
        [x[:, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3].mean(axis=(1, 2)) for i in range(2)
         for j in range(3)], axis=1,
    )  # fmt: skip
    assert pooled.shape == (300, 2 * 3 * 2)
    assert np.allclose(pooled, expected.reshape(300, -1), atol=1e-6)
    assert np.shares_memory(pooled_features(x, 1), x)  # no copy without pooling


def test_svm_probabilities_are_a_sigmoid_of_the_decision() -> None:
    probs = svm_probabilities(np.array([-1000.0, -1.0, 0.0, 2.0]))
    assert np.allclose(probs[:, 1], [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2))])
    assert np.allclose(probs.sum(axis=1), 1.0) and np.isfinite(probs).all()


def test_the_methods_space_gives_each_method_exactly_its_params() -> None:
    """For every method of search_spaces/weather-methods.yaml, the parameters its
    conditions activate (at their lowest value) are the method's own: the model builds,
    where a parameter of another method would be refused."""
    experiment = space.load(ROOT / "search_spaces" / "weather-methods.yaml")
    assert next(p for p in experiment.params if p.name == "method").choices == METHODS
    bench = WeatherBenchmark(experiment.options)
    active: dict[str, set[str]] = {}
    for method in METHODS:
        values: dict[str, Any] = {"method": method, **experiment.fixed}
        for spec in experiment.params:
            if spec.name != "method" and is_active(spec, values):
                values[spec.name] = spec.choices[0] if spec.kind == "categorical" else spec.low
        active[method] = set(values) - {"method"}
        if method == "cnn":
            resolve(values, experiment.options["task"])  # building it is tested elsewhere
        else:
            bench.build_model(values, seed=0)
    assert active["svm"] == {"downsample", "C", "kernel", "gamma_scale"}
    assert active["knn"] == {"downsample", "n_neighbors", "weights"}
    assert {"learning_rate", "filters1"} <= active["cnn"] and "C" not in active["cnn"]


def test_package_import_stays_free_of_sklearn() -> None:
    code = (
        "import sys, benchmarks_sci.weather.benchmark, benchmarks_sci.weather.methods; "
        "assert 'sklearn' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
