"""The plugin contract: five things required, the rest optional and degrading clearly.

A plugin with only ``name``, ``metrics``, ``load_data``, ``build_model`` and ``fit`` runs
trials to completion; the measurements that need an optional method are left out and
noted, never failing the trial; the features that need one (ensembles, the
``latency_ms`` objective) are refused when the space file is validated. Broken plugins
are refused on the driver: tests/benchmarks/test_bad_plugins.py.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from supervisor.benchmarks import (
    Benchmark,
    MissingMethod,
    Option,
    PluginError,
    ensemble_problem,
    provides,
    registry,
)
from supervisor.benchmarks.functions import TestFunction
from supervisor.config import space
from supervisor.errors import SpaceError
from supervisor.execution.execute import execute
from supervisor.execution.trial import TrialSpec
from tests.toy_benchmark import ToyBenchmark

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.benchmarks.test_contract:Minimal"


class Model:
    """A model with no ``count_params`` (not Keras): ``n_params`` cannot be counted."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.x = float(params.get("x", 0.0))


class Minimal(Benchmark):
    name = "minimal"
    metrics = {"loss": "minimize"}

    def load_data(self, seed: int) -> Any:
        return None

    def build_model(self, params: Mapping[str, Any], seed: int) -> Model:
        return Model(params)

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> dict:
        for epoch in range(epochs):
            report(epoch, {"loss": model.x**2})
        return {"loss": model.x**2}


class Ensembled(Minimal):
    ensemble_kind = "classification"


def spec(objectives: tuple[str, ...] = ("loss",)) -> TrialSpec:
    return TrialSpec(
        study_name="contract",
        trial_number=0,
        params={"x": 0.5},
        benchmark="minimal",
        benchmark_target=TARGET,
        options={},
        epochs=2,
        seed=0,
        data_seed=0,
        objectives=objectives,
        isolation="inline",
    )


def test_only_five_things_are_required() -> None:
    assert registry.load(TARGET) is Minimal
    assert Minimal.options == {} and Minimal({}).config == {}
    for method in ("predict", "save_data", "ensemble_outputs"):
        assert not provides(Minimal, method)
    assert provides(ToyBenchmark, "predict") and provides(ToyBenchmark, "save_data")
    # the test functions have no data set: they no longer pretend to save one
    assert not provides(TestFunction, "save_data")


def test_a_missing_optional_method_says_which_when_called() -> None:
    bench = Minimal({})
    with pytest.raises(MissingMethod, match=r"'minimal' does not implement the optional predict"):
        bench.predict(Model({}), [1.0])
    with pytest.raises(MissingMethod, match="optional save_data"):
        bench.save_data(None, Path("nowhere.npz"))
    assert bench.count_params(Model({})) is None  # no count_params on the model: unknown


def test_a_minimal_plugin_completes_its_trials_without_the_optional_measurements() -> None:
    result = execute(spec())
    assert result.status == "complete", result.traceback
    assert result.values == [0.25]
    assert "n_params" not in result.metrics and "latency_ms" not in result.metrics
    assert "n_params not measured" in result.extra["n_params_error"]
    assert result.extra["latency_error"] == "latency not measured: the benchmark has no predict()"
    assert {"train_seconds", "node_seconds", "peak_memory_mb"} <= set(result.metrics)


def test_n_params_as_an_objective_fails_the_trial_saying_why() -> None:
    result = execute(spec(("loss", "n_params")))
    assert result.status == "failed" and result.error_type == "KeyError"
    assert "benchmark returned no metric 'n_params' (n_params not measured" in result.error


def write(tmp_path: Path, extra: str, target: str = TARGET) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(
        f'benchmark: "{target}"\nparams:\n  x: {{type: float, low: -1, high: 1}}\n'
        f"budget: {{trials: 2}}\n{extra}"
    )
    return path


def test_features_that_need_predict_are_refused_at_validation(tmp_path: Path) -> None:
    assert space.load(write(tmp_path, "objectives: [loss, n_params]\n")).metric_names == [
        "loss",
        "n_params",
    ]
    with pytest.raises(SpaceError, match="latency_ms is measured with predict"):
        space.load(write(tmp_path, "objectives: [latency_ms]\n"))
    ensembled = "tests.benchmarks.test_contract:Ensembled"
    with pytest.raises(SpaceError, match=r"has no predict\(\) method, which ensembles need"):
        space.load(write(tmp_path, "ensemble: true\n", ensembled))
    with pytest.raises(SpaceError, match="does not support ensembles"):
        space.load(write(tmp_path, "ensemble: true\n"))
    assert ensemble_problem(ToyBenchmark) is not None  # no ensemble_kind
    assert ensemble_problem(Ensembled) is not None
    assert ensemble_problem(registry.load("tests.toy_classifier:ToyClassifier")) is None


def test_non_finite_option_values_are_refused() -> None:
    option = Option(1.0, "a float")
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="expected a finite number"):
            option.check("scale", bad)
    assert option.check("scale", 2) == 2.0


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (":X", "expected a registered benchmark name or 'package.module:Class'"),
        ("..:x", "expected a registered benchmark name"),
        ("json:dumps", "json:dumps: not a Benchmark class (a function)"),
        ("os:system", "os:system: not a Benchmark class (a function)"),
        ("x" * 1000, "benchmark name too long (1000 characters; at most 256)"),
        ("tests.toy_benchmark:ToyModel", "not a Benchmark class (ToyModel is no subclass"),
        ("supervisor.benchmarks:Benchmark", "does not implement load_data, build_model, fit"),
    ],
)
def test_what_is_not_a_plugin_is_refused_in_one_line(name: str, fragment: str) -> None:
    with pytest.raises(PluginError) as err:
        registry.load(name)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert len(str(err.value)) < 400


def test_benchmarks_sci_is_a_client_of_the_contract_like_any_plugin() -> None:
    """The example plugin imports from the core only ``supervisor.benchmarks``."""
    for path in (ROOT / "benchmarks_sci").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                if name == "supervisor" or name.startswith("supervisor."):
                    assert name.startswith("supervisor.benchmarks"), f"{path}: imports {name}"


class Misreports(Minimal):
    """Reports what the contract does not allow: an epoch below 0, or a bool metric."""

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> dict:
        if params["x"] < 0:
            report(-5, {"loss": 1.0})
        return {"loss": True}


@pytest.mark.parametrize(
    ("x", "error"),
    [(-0.5, "report(epoch=-5): an epoch is an integer >= 0"), (0.5, "metric 'loss' is True")],
)
def test_a_plugin_breaking_the_contract_fails_its_trial_saying_how(x: float, error: str) -> None:
    """A negative epoch reached Optuna's ``report`` in the driver and stopped the campaign;
    a bool loss was stored as 1.0."""
    broken = spec()
    broken = TrialSpec(
        **{**broken.__dict__, "params": {"x": x}, "benchmark_target": f"{__name__}:Misreports"}
    )
    result = execute(broken)
    assert result.status == "failed" and error in result.error


def test_why_a_measurement_was_left_out_is_stored_with_the_trial() -> None:
    from supervisor.study.outcomes import result_attrs

    stored = result_attrs(execute(spec()), {})
    assert stored["latency_error"] == "latency not measured: the benchmark has no predict()"
    assert "n_params not measured" in stored["n_params_error"]
