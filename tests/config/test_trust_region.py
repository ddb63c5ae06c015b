"""``sampler: turbo`` (``supervisor.config.trust_region``): a GP with Thompson sampling in a
trust region, the pending trials believed at the model's mean. What a campaign relies on:
it finds the optimum faster than random search, keeps a burst of pending proposals apart
yet near the best (at the cost of one posterior), proposes valid values of every kind of
parameter and no configuration twice, is a function of (seed, trial number, history), bad
options are refused by the space file, and it is the default where it was measured."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from supervisor.config import region_draws, space
from supervisor.config.local_penalty import PenalizedDraws
from supervisor.config.samplers import check, make_sampler
from supervisor.config.trust_region import PENALIZE_BELOW, TrustRegionSampler
from supervisor.errors import SpaceError

X = optuna.distributions.FloatDistribution(0.0, 1.0)
SPACE: dict[str, optuna.distributions.BaseDistribution] = {"x": X, "y": X}
OPTIMUM = (0.31, 0.72)


def bowl(params: dict[str, float]) -> float:
    return (params["x"] - OPTIMUM[0]) ** 2 + 4 * (params["y"] - OPTIMUM[1]) ** 2


def best_after(sampler: optuna.samplers.BaseSampler, trials: int, inflight: int = 1) -> float:
    """The best value of ``trials`` trials, ``inflight`` asked before each is told."""
    study = optuna.create_study(sampler=sampler)
    running = [study.ask(SPACE) for _ in range(inflight)]
    for _ in range(trials):
        trial = running.pop(0)
        study.tell(trial, bowl(trial.params))
        running.append(study.ask(SPACE))
    return study.best_value


@pytest.mark.parametrize(("inflight", "trials", "factor"), [(1, 40, 20), (8, 60, 5)])
def test_it_finds_the_optimum_faster_than_random_search(
    inflight: int, trials: int, factor: float
) -> None:
    turbo = [best_after(make_sampler("turbo", {}, s), trials, inflight) for s in range(3)]
    rand = [best_after(make_sampler("random", {}, s), trials, inflight) for s in range(3)]
    assert statistics.median(turbo) < statistics.median(rand) / factor, (turbo, rand)


def told_then_counted(
    study: optuna.Study, told: int, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """``told`` trials on the bowl, then a list that records each posterior made after."""
    for _ in range(told):
        trial = study.ask(SPACE)
        study.tell(trial, bowl(trial.params))
    made: list[int] = []
    posterior = region_draws.Region.posterior

    def counted(model: Any, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        made.append(len(at))
        return posterior(model, at)

    monkeypatch.setattr(region_draws.Region, "posterior", counted)
    return made


def test_a_burst_of_believed_proposals_spreads_around_the_best_from_one_posterior(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = optuna.create_study(sampler=make_sampler("turbo", {"batch": "believer"}, 5))
    made = told_then_counted(study, 15, monkeypatch)
    best = study.best_params
    burst = [study.ask(SPACE).params for _ in range(24)]  # all pending at once
    assert len(made) == 1  # no result came in between: each is one more draw from it
    points = {(p["x"], p["y"]) for p in burst}
    assert len(points) == 24  # no two alike: the believed pending trials push apart
    near = [math.dist((p["x"], p["y"]), (best["x"], best["y"])) for p in burst]
    uniform = np.random.default_rng(0).random((1000, 2))
    far = [math.dist(tuple(u), (best["x"], best["y"])) for u in uniform]
    assert statistics.median(near) < statistics.median(far) / 2  # yet near the best


def test_more_trials_in_flight_than_candidates_draw_fresh_ones_in_the_same_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands in flight ask more proposals between two posteriors than the region has
    candidates: once they are all taken, a fresh set in the same region (one more
    posterior per set), not a wider region for every proposal."""
    study = optuna.create_study(sampler=make_sampler("turbo", {"n_candidates": 16}, 5))
    made = told_then_counted(study, 15, monkeypatch)
    best = study.best_params
    burst = [study.ask(SPACE).params for _ in range(96)]  # all pending at once
    assert len({(p["x"], p["y"]) for p in burst}) == 96
    assert len(made) <= 96 // 16 + 2, len(made)  # a widened region per proposal: ~80
    late = [math.dist((p["x"], p["y"]), (best["x"], best["y"])) for p in burst[48:]]
    early = [math.dist((p["x"], p["y"]), (best["x"], best["y"])) for p in burst[:16]]
    assert max(late) < 2 * max(early)  # still around the best


def best_mixed(sampler: str, seed: int) -> float:
    """The best score of 40 trials over a log-scaled float, a stepped int and a choice."""
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "units": optuna.distributions.IntDistribution(8, 128, step=8),
        "act": optuna.distributions.CategoricalDistribution(["relu", "tanh", "gelu"]),
    }

    def score(p: dict[str, Any]) -> float:
        lr, units = float(p["lr"]), int(p["units"])
        return -((math.log10(lr) + 3) ** 2) - ((units - 64) / 64) ** 2 + (p["act"] == "gelu")

    study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, {}, seed))
    for _ in range(40):
        trial = study.ask(dists)
        for name, dist in dists.items():
            assert dist._contains(dist.to_internal_repr(trial.params[name])), trial.params
        study.tell(trial, score(trial.params))
    return study.best_value


def test_every_kind_of_parameter_gets_a_valid_value_and_maximize_is_honoured() -> None:
    turbo = [best_mixed("turbo", s) for s in range(3)]  # the best is 1: gelu, 1e-3, 64 units
    rand = [best_mixed("random", s) for s in range(3)]
    assert statistics.mean(turbo) > 0.93 > statistics.mean(rand), (turbo, rand)


@pytest.mark.parametrize("inflight", [1, 8])
def test_a_small_discrete_space_is_covered_without_proposing_a_trained_configuration(
    inflight: int,
) -> None:
    """36 configurations: every proposal is a new one until the space runs out, also when
    the region around the best holds none left (it widens), as a tabular benchmark needs,
    and a configuration that failed is not tried again."""
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        "depth": optuna.distributions.IntDistribution(1, 6),
        "opt": optuna.distributions.CategoricalDistribution(["a", "b", "c", "d", "e", "f"]),
    }
    study = optuna.create_study(sampler=make_sampler("turbo", {"n_startup_trials": 4}, 3))
    running = [study.ask(dists) for _ in range(inflight)]
    for _ in range(36 - inflight):
        trial = running.pop(0)
        if trial.params["depth"] == 3:  # e.g. out of memory: no value
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, abs(trial.params["depth"] - 4) + (trial.params["opt"] != "c"))
        running.append(study.ask(dists))
    configs = {(t.params["depth"], t.params["opt"]) for t in study.trials}
    assert len(configs) >= 34  # at most the last proposals, where few are left, are random


def test_a_proposal_is_a_function_of_the_seed_the_number_and_the_history() -> None:
    def proposals(seed: int, told: int, asks: int) -> list[dict[str, float]]:
        study = optuna.create_study(sampler=make_sampler("turbo", {}, seed))
        for i in range(told):
            study.enqueue_trial({"x": (i * 0.37) % 1, "y": (i * 0.61) % 1})
            trial = study.ask(SPACE)
            study.tell(trial, bowl(trial.params))
        return [study.ask(SPACE).params for _ in range(asks)]

    again = proposals(7, 12, 3)
    assert again == proposals(7, 12, 3)  # a fresh campaign is reproducible
    assert again[0] != proposals(8, 12, 1)[0]  # another seed explores elsewhere
    assert proposals(7, 12, 1)[0] != proposals(7, 13, 1)[0]  # and so does more history


def test_the_space_file_refuses_bad_options_and_several_objectives(tmp_path: Path) -> None:
    """Also ``failures`` (turbo's own option; the supervisor's for TPE, which shows TPE
    failures through its history view, so not with ``history: null``, and for CMA-ES)."""
    path = tmp_path / "s.yaml"
    text = """\
benchmark: "tests.toy_benchmark:ToyBenchmark"
params:
  x: {type: float, low: -4, high: 4}
budget: {trials: 2}
sampler: {name: NAME, options: OPTIONS}
"""
    for name, options, fragment in [
        ("turbo", "{n_startup_trials: 1}", "n_startup_trials"),
        ("turbo", "{initial_length: 3}", "initial_length"),
        ("turbo", "{failure_tolerance: 0}", "failure_tolerance"),
        ("turbo", "{noisy: 1}", "expects bool for 'noisy'"),
        ("turbo", "{batch: lucky}", "batch: expected one of believer, penalize"),
        ("turbo", "{multivariate: true}", "no option 'multivariate'"),
        ("turbo", "{failures: worst}", "failures: expected one of avoid, ignore"),
        ("tpe", "{failures: worst}", "expected one of avoid, ignore"),
        ("tpe", "{failures: avoid, history: null}", "avoid needs a history view"),
        ("cmaes", "{failures: worst}", "expected one of avoid, ignore"),
        ("qmc", "{failures: avoid}", "no option 'failures'"),
    ]:
        path.write_text(text.replace("NAME", name).replace("OPTIONS", options))
        with pytest.raises(SpaceError, match=r"sampler\.options") as info:
            space.load(path)
        assert fragment in str(info.value), options
    for name, options in [
        ("turbo", "{n_startup_trials: 5, noisy: true}"),
        ("tpe", "{failures: ignore}"),
        ("tpe", "{history: null}"),  # TPE sees the whole study and leaves failures out
        ("cmaes", "{failures: ignore}"),
    ]:
        path.write_text(text.replace("NAME", name).replace("OPTIONS", options))
        assert space.load(path).sampler_options == yaml.safe_load(options)
    assert "one objective only" in str(check("turbo", {}, 2))
    assert isinstance(make_sampler("turbo", {}, 1), TrustRegionSampler)


def test_with_noisy_the_region_centres_on_the_model_not_on_the_luckiest_report() -> None:
    """Reported values of a parabola with noise: the lowest report lies far from the
    optimum; ``noisy: true`` learns the noise and centres the region near the optimum."""
    rng = np.random.default_rng(17)
    x = rng.random((60, 1))
    values = (x[:, 0] - 0.3) ** 2 + rng.normal(0.0, 0.03, 60)
    luckiest = float(x[int(np.argmin(values)), 0])
    assert abs(luckiest - 0.3) > 0.1  # the seed is chosen so: a lucky draw far off
    centres = []
    for noisy in (False, True):
        sampler = TrustRegionSampler(seed=0, noisy=noisy)
        centres.append(float(sampler._model(x, values, [], ()).best[0]))
    assert centres[0] == luckiest
    assert abs(centres[1] - 0.3) < 0.05, centres


def test_a_space_file_without_a_sampler_gets_turbo_where_it_was_measured_else_tpe(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.yaml"
    base = """\
benchmark: "tests.toy_benchmark:ToyBenchmark"
params:
  x: {type: float, low: -4, high: 4}
  n: {type: int, low: 1, high: 8}
  act: {type: categorical, choices: [relu, tanh]}
budget: {trials: 2}
"""
    conditional = "  y: {type: float, low: 0, high: 1, when: {act: [tanh]}}\n"
    for extra, expected in [
        ("", "turbo"),  # one objective, every parameter always active, no pruner
        ("pruner: median\n", "tpe"),  # TPE learns from pruned trials too
        ("objectives: [loss, n_params]\n", "tpe"),  # turbo has one objective
        ("sampler: random\n", "random"),  # what the file names
    ]:
        path.write_text(base + extra)
        assert space.load(path).sampler == expected, extra
    path.write_text(base.replace("budget:", conditional + "budget:"))
    assert space.load(path).sampler == "tpe"  # TPE models the sub-spaces


def cell_regret(sampler: str, seed: int, trials: int) -> int:
    """One at a time over six 5-way choices (a NAS-Bench-201 cell's shape, 15,625
    configurations), where each choice adds its own loss: the best regret found."""
    ops = ["none", "skip", "conv1", "conv3", "pool"]
    dists = {f"edge{i}": optuna.distributions.CategoricalDistribution(ops) for i in range(6)}
    cost = [[(3 * i + 2 * j) % 5 for j in range(5)] for i in range(6)]  # 0 at one op per edge
    study = optuna.create_study(sampler=make_sampler(sampler, {}, seed))
    for _ in range(trials):
        trial = study.ask(dists)
        study.tell(trial, sum(cost[i][ops.index(trial.params[f"edge{i}"])] for i in range(6)))
    return int(study.best_value)


def test_categorical_choices_change_a_few_at_a_time_near_the_best() -> None:
    """A trust region's box around a one-hot choice changes no choice until it spans half
    the space: turbo moves a few choices at a time instead (a Hamming ball), so one
    proposal at a time still finds the best cell, as TPE does."""
    turbo = [cell_regret("turbo", s, 40) for s in range(4)]  # a box: 0, 2, 0, 2
    rand = [cell_regret("random", s, 40) for s in range(4)]
    assert max(turbo) == 0 < min(rand), (turbo, rand)


def test_past_its_history_limit_it_still_proposes_no_configuration_twice() -> None:
    """Above ``history`` finished trials the model sees a bounded view of them; the
    configurations it must not propose again are still every one of the study (a repeat
    would be told its twin's result without training: a slot and a proposal wasted)."""
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        "a": optuna.distributions.IntDistribution(0, 11),
        "b": optuna.distributions.IntDistribution(0, 11),
    }
    sampler = make_sampler("turbo", {"history": 50, "n_startup_trials": 4}, 1)
    study = optuna.create_study(sampler=sampler)
    running = [study.ask(dists) for _ in range(4)]
    for _ in range(130):
        trial = running.pop(0)
        study.tell(trial, (trial.params["a"] - 7) ** 2 + (trial.params["b"] - 3) ** 2)
        running.append(study.ask(dists))
    configs = [(t.params["a"], t.params["b"]) for t in study.trials]
    modelled = configs[8:]  # the start-up's random draws (4 in flight + 4) may repeat
    assert not [c for i, c in enumerate(modelled, start=8) if c in configs[:i]]
    assert len(study.trials) == 134


def test_pending_trials_are_penalised_on_discrete_spaces_and_with_few_in_flight() -> None:
    """The default per space and number pending (measured: README, Search at scale), and
    ``batch`` overrides it."""
    grid = {"n": optuna.distributions.IntDistribution(1, 8),
            "act": optuna.distributions.CategoricalDistribution(["relu", "tanh"]),
            "lr": optuna.distributions.FloatDistribution(0.1, 0.5, step=0.1)}  # fmt: skip
    mixed = {**grid, "x": X}
    few, many = PENALIZE_BELOW - 1, PENALIZE_BELOW
    default = TrustRegionSampler()
    assert default._penalizes(grid, few) and default._penalizes(grid, many)
    assert default._penalizes(mixed, few) and not default._penalizes(mixed, many)
    assert not TrustRegionSampler(batch="believer")._penalizes(grid, few)
    assert TrustRegionSampler(batch="penalize")._penalizes(mixed, many)


@pytest.mark.parametrize("in_flight", [4, PENALIZE_BELOW + 8])
def test_a_continuous_campaign_penalises_only_while_few_trials_are_pending(in_flight: int) -> None:
    dists = {"x": X, "y": optuna.distributions.FloatDistribution(-5.0, 5.0)}
    sampler = TrustRegionSampler(seed=3, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler)
    running = [study.ask(dists) for _ in range(in_flight)]
    for _ in range(12):
        trial = running.pop(0)
        study.tell(trial, trial.params["x"] ** 2 + trial.params["y"] ** 2)
        running.append(study.ask(dists))
    assert sampler._cached is not None
    penalised = type(sampler._cached[2]) is PenalizedDraws
    assert penalised == (in_flight <= PENALIZE_BELOW)


def test_a_penalised_pick_leaves_the_ball_a_pending_trial_excludes() -> None:
    """Expected improvement picks next to the best; a trial pending there pushes the
    next pick out of its ball, and one pending where the model expects a poor score far
    from the best does not move it."""
    from supervisor.config.gp_kernel import normal_scores

    x = np.array([[0.05], [0.2], [0.35], [0.6], [0.8], [0.95]])
    values = (x[:, 0] - 0.42) ** 2
    sampler = TrustRegionSampler(seed=0, batch="penalize")
    kernel = sampler._kernel(x, values)
    model = region_draws.Region.fit(kernel, x, normal_scores(values), [], x[2], np.ones(1), ())
    candidates = np.linspace(0.0, 1.0, 201)[:, None]
    draws = PenalizedDraws(model, candidates, None, _Identity())  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    alone = float(draws.points[int(np.argmin(draws.scores(rng, None)))][0])
    assert 0.3 < alone < 0.55  # around the optimum, 0.42
    near = float(draws.points[int(np.argmin(draws.scores(rng, np.array([[alone]]))))][0])
    assert abs(near - alone) > 0.02, (alone, near)
    far = float(draws.points[int(np.argmin(draws.scores(rng, np.array([[0.97]]))))][0])
    assert far == alone
    picked = draws.pick(rng, set(), np.array([[alone]]))
    assert picked is not None and abs(picked["x"] - near) < 1e-9


class _Identity:
    """A transform of one float ``x`` already in the unit interval."""

    def untransform(self, point: np.ndarray) -> dict[str, float]:
        return {"x": float(point[0])}


def test_a_burst_on_a_discrete_space_spreads_around_the_best_without_repeats() -> None:
    grid = {"a": optuna.distributions.IntDistribution(0, 40),
            "b": optuna.distributions.IntDistribution(0, 40)}  # fmt: skip

    def cost(p: dict[str, Any]) -> float:
        return (p["a"] - 13) ** 2 + 2 * (p["b"] - 29) ** 2

    study = optuna.create_study(sampler=make_sampler("turbo", {}, 4))
    for _ in range(15):
        trial = study.ask(grid)
        study.tell(trial, cost(trial.params))
    best = study.best_params
    burst = [study.ask(grid).params for _ in range(24)]  # all pending at once
    assert len({(p["a"], p["b"]) for p in burst}) == 24
    told = {(t.params["a"], t.params["b"]) for t in study.trials[:15]}
    assert not told & {(p["a"], p["b"]) for p in burst}
    near = [math.dist((p["a"], p["b"]), (best["a"], best["b"])) for p in burst]
    assert statistics.median(near) < 10, near  # of a 40 x 40 grid


EDGE = 0.6  # past it in x a trial fails (a learning rate that diverges)


def failing_campaign(name: str, options: dict[str, Any], seed: int) -> tuple[int, float]:
    """40 trials, one at a time, on a bowl whose optimum (x = 0.58) lies just inside the
    edge: (trials that failed after the first 10, the best value)."""
    study = optuna.create_study(sampler=make_sampler(name, options, seed))
    failed = 0
    for i in range(40):
        trial = study.ask(SPACE)
        x, y = trial.params["x"], trial.params["y"]
        if x > EDGE:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a model failure
            failed += i >= 10
        else:
            study.tell(trial, (x - 0.58) ** 2 + 4 * (y - OPTIMUM[1]) ** 2)
    return failed, study.best_value


@pytest.mark.parametrize("name", ["turbo", "tpe"])
def test_it_learns_where_trials_fail_and_stops_proposing_there(name: str) -> None:
    """The best configurations often lie at the edge of failure. ``failures: avoid`` (the
    default) learns where trials fail; ``ignore`` (Optuna's TPE) keeps proposing past the
    edge, half its trials and more, and finds a worse optimum."""
    ignore = [failing_campaign(name, {"failures": "ignore"}, s) for s in range(3)]
    avoid = [failing_campaign(name, {}, s) for s in range(3)]
    assert sum(f for f, _ in ignore) >= 45, ignore  # of 90 after the start-up
    assert sum(f for f, _ in avoid) < sum(f for f, _ in ignore) / 1.5, (avoid, ignore)
    best = [statistics.median(b for _, b in runs) for runs in (avoid, ignore)]
    assert best[0] < best[1], best


def test_only_failures_of_the_configuration_are_learnt_and_tpe_sees_them_as_pruned() -> None:
    """A trial that failed by the model is data; one whose worker died (re-run with its
    parameters), was interrupted or never ran is not. TPE's view shows the model's
    failures as pruned trials (copies: the study keeps them failed); ``ignore`` as they
    are, which TPE leaves out."""
    from optuna.trial import TrialState

    from supervisor.config.history import FAILURE, failed_by_model
    from supervisor.study import attrs

    assert attrs.FAILURE == FAILURE  # the attribute the driver sets, read a layer below
    study = optuna.create_study()
    for i, kind in enumerate([None, "model", "infrastructure", "interrupted", "surplus"]):
        trial = study.ask(SPACE)
        if kind is None:
            study.tell(trial, bowl(trial.params))
            continue
        if kind != "model" or i % 2:
            trial.set_user_attr(attrs.FAILURE, kind)
        study.tell(trial, state=TrialState.FAIL)
    learnt = [failed_by_model(t) for t in study.trials]
    assert learnt == [False, True, False, False, False]
    for options, shown in (({}, TrialState.PRUNED), ({"failures": "ignore"}, TrialState.FAIL)):
        sampler = make_sampler("tpe", options, 0)
        _, chosen = sampler._select(study)  # type: ignore[attr-defined]
        states = {t.number: t.state for t in chosen}
        assert states[1] == shown, states
        assert all(states.get(n, TrialState.FAIL) == TrialState.FAIL for n in (2, 3, 4))
    assert study.trials[1].state == TrialState.FAIL
