"""The ``constraints:`` key of a space file (``supervisor.config.constraints``): what it
reads, which samplers it takes, and what ``search --dry-run`` says of it. Malformed
constraints are in the bad-input corpus (``tests/bad_inputs/space/constraint*.yaml``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from supervisor.commands.search import SearchOptions
from supervisor.commands.summary import describe_experiment
from supervisor.config import space
from supervisor.config.constraints import Constraint

HEAD = """\
benchmark: "tests.toy_benchmark:ToyBenchmark"
params:
  x: {type: float, low: -4, high: 4}
budget: {trials: 2}
"""


def load(tmp_path: Path, text: str) -> space.Experiment:
    path = tmp_path / "toy.yaml"
    path.write_text(HEAD + text)
    return space.load(path)


def test_bounds_on_benchmark_and_cost_metrics_are_read_and_stored(tmp_path: Path) -> None:
    exp = load(
        tmp_path,
        "constraints:\n  score: {min: -1.5}\n  latency_ms: {max: 5}\n"
        "  peak_memory_mb: {min: 10, max: 4000}\n",
    )
    assert exp.constraints == (
        Constraint("score", low=-1.5),
        Constraint("latency_ms", high=5.0),
        Constraint("peak_memory_mb", low=10.0, high=4000.0),
    )
    stored = exp.to_dict()["constraints"]
    assert stored == {
        "score": {"min": -1.5},
        "latency_ms": {"max": 5.0},
        "peak_memory_mb": {"min": 10.0, "max": 4000.0},
    }
    assert load(tmp_path, "").constraints == ()
    assert load(tmp_path, "").to_dict()["constraints"] == {}


def test_a_constrained_space_defaults_to_tpe_which_steers_by_them(tmp_path: Path) -> None:
    # turbo (the default for one objective) cannot use constraints; TPE can.
    assert load(tmp_path, "").sampler == "turbo"
    assert load(tmp_path, "constraints: {score: {max: -1}}\n").sampler == "tpe"
    for name in ("tpe", "nsgaii", "random", "qmc"):
        text = f"sampler: {name}\nconstraints: {{score: {{max: -1}}}}\n"
        assert load(tmp_path, text).sampler == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3.0, 0.0),  # on the bound: kept
        (2.0, -1.0),
        (5.5, 2.5),  # above max by 2.5
        (-1.0, 1.0),  # below min by 1
        (math.nan, 3.0),  # not measured: broken by the width of the bound
        (None, 3.0),
        ("text", 3.0),
    ],
)
def test_the_violation_is_optunas_constraint_value(value: object, expected: float) -> None:
    assert Constraint("m", low=0.0, high=3.0).violation(value) == expected


def test_dry_run_shows_the_constraints_and_whether_the_sampler_steers(tmp_path: Path) -> None:
    opts = SearchOptions(space_file="toy.yaml", runs_root=tmp_path)
    steered = describe_experiment(
        load(tmp_path, "constraints: {score: {max: -1}, n_params: {min: 1, max: 9}}\n"), opts
    )
    assert "constraints score <= -1, 1 <= n_params <= 9: only trials keeping them" in steered
    assert "does not steer" not in steered
    blind = describe_experiment(
        load(tmp_path, "sampler: random\nconstraints: {score: {max: -1}}\n"), opts
    )
    assert "the random sampler does not steer by constraints" in blind
    assert "constraints" not in describe_experiment(load(tmp_path, ""), opts)
