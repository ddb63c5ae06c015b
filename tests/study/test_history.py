"""Samplers model a bounded, representative view of large studies
(``supervisor.config.history``): the best trials, a stratified sample of the rest and the
pending ones; small studies are seen whole."""

from __future__ import annotations

import random
import warnings

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from supervisor.config import history
from supervisor.config.samplers import check_options, make_sampler

X = {"x": FloatDistribution(0.0, 1.0)}
MIN = [StudyDirection.MINIMIZE]


def trials_of(states: list[TrialState], seed: int = 0) -> list[FrozenTrial]:
    rng = random.Random(seed)
    out = []
    for number, state in enumerate(states):
        x = rng.random()
        value = (x - 0.3) ** 2 if state == TrialState.COMPLETE else None
        t = create_trial(state=state, params={"x": x}, distributions=X, value=value)
        t.number = number
        out.append(t)
    return out


def test_a_study_within_the_limit_is_seen_whole() -> None:
    trials = trials_of([TrialState.COMPLETE] * 100 + [TrialState.RUNNING] * 50)
    assert history.representative(trials, 100, MIN) is trials
    assert history.Ranking(1.0).view(trials, 100) is trials


def test_a_large_study_keeps_the_best_a_stratified_rest_and_pending_trials() -> None:
    states = [TrialState.COMPLETE] * 5000 + [TrialState.PRUNED] * 500
    states += [TrialState.FAIL] * 300 + [TrialState.RUNNING] * 200 + [TrialState.WAITING] * 3
    trials = trials_of(states)
    random.Random(1).shuffle(states)
    view = history.representative(trials, 300, MIN)
    by_state = {s: [t for t in view if t.state == s] for s in TrialState}
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]
    finished += by_state[TrialState.FAIL]  # failed by the model: where training fails
    assert 290 <= len(finished) <= 310
    assert 10 <= len(by_state[TrialState.FAIL]) <= 20  # at the rate of the rest
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert complete[:30] == sorted(by_state[TrialState.COMPLETE], key=lambda t: t.value)[:30]
    # The rest spans the whole range of values, not only the good end.
    kept = sorted(t.value for t in by_state[TrialState.COMPLETE])
    assert kept[-1] == complete[-1].value and kept[len(kept) // 2] > complete[500].value
    pending = by_state[TrialState.RUNNING] + by_state[TrialState.WAITING]
    assert len(pending) == history.MIN_PENDING
    assert max(t.number for t in pending) == 6002  # the newest pending is kept
    assert [t.number for t in view] == sorted(t.number for t in view)


def test_thousands_pending_below_the_limit_are_capped_and_the_finished_kept() -> None:
    """A first wave on thousands of workers: few finished, thousands pending. The sampler
    models every finished trial and at most ``limit`` pending ones, spread over them."""
    states = [TrialState.COMPLETE] * 40 + [TrialState.FAIL] * 5 + [TrialState.RUNNING] * 5000
    trials = trials_of(states + [TrialState.WAITING] * 2)
    for view in (history.representative(trials, 300, MIN), history.Ranking(1.0).view(trials, 300)):
        by_state = {s: [t for t in view if t.state == s] for s in TrialState}
        assert len(by_state[TrialState.COMPLETE]) == 40 and len(by_state[TrialState.FAIL]) == 5
        pending = [t.number for t in view if not t.state.is_finished()]
        assert len(pending) == 300 and pending[-1] == 5046  # the newest is kept
        assert pending[0] < 100 and pending[150] > 2000  # spread over the wave


def test_in_the_samplers_start_up_the_study_is_handed_as_it_is() -> None:
    """Below ``n_startup_trials`` finished trials TPE and GP draw at random, once they
    have counted the finished ones: those are the view (not a first wave's thousands of
    pending trials); from there on the capped view is."""
    states = [TrialState.RUNNING] * 1000 + [TrialState.COMPLETE] * 9 + [TrialState.RUNNING] * 999
    trials = trials_of(states)
    found = history.Ranking(1.0).view(trials, 300, startup=10)
    assert [t.number for t in found] == list(range(1000, 1009))
    view = history.Ranking(1.0).view(trials_of([*states, TrialState.COMPLETE]), 300, startup=10)
    assert len([t for t in view if t.state == TrialState.RUNNING]) == 300


def test_the_incremental_ranking_is_the_same_view_as_a_fresh_one() -> None:
    """Trials finish out of order; each look sees only what changed, and yields what a
    look at the whole study yields."""
    rng = random.Random(3)
    states = [TrialState.RUNNING] * 2000
    ranking = history.Ranking(-1.0)  # maximize
    for step in range(6):
        for n in rng.sample(range(len(states)), 300):
            if states[n] == TrialState.RUNNING:
                states[n] = rng.choice([TrialState.COMPLETE] * 8 + [TrialState.PRUNED])
        states += [TrialState.RUNNING] * 100
        trials = trials_of(states, seed=step)
        # Finished trials never change: keep their values from the first look.
        trials = [t if t.state == TrialState.RUNNING else FIXED.setdefault(t.number, t)
                  for t in trials]  # fmt: skip
        fresh = history.representative(trials, 200, [StudyDirection.MAXIMIZE])
        assert [t.number for t in ranking.view(trials, 200)] == [t.number for t in fresh]


FIXED: dict[int, FrozenTrial] = {}


def sampler(options: dict[str, object]) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make_sampler("tpe", options, seed=4)


def proposals(study: optuna.Study, n: int) -> list[float]:
    out = []
    for _ in range(n):
        trial = study.ask(X)
        out.append(trial.params["x"])
        study.tell(trial, (trial.params["x"] - 0.3) ** 2)
    return out


def test_below_the_limit_tpe_proposes_exactly_what_it_proposes_unbounded() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bounded = optuna.create_study(sampler=sampler({"history": 60}))
    whole = optuna.create_study(sampler=sampler({"history": None}))
    assert proposals(bounded, 40) == proposals(whole, 40)
    assert isinstance(bounded.sampler, optuna.samplers.TPESampler)


def test_above_the_limit_tpe_models_the_view_and_still_finds_the_minimum() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler({"history": 100}))
    rng = random.Random(5)
    xs = [rng.random() for _ in range(2000)]
    study.add_trials(
        [create_trial(params={"x": x}, distributions=X, value=(x - 0.3) ** 2) for x in xs]
    )
    sizes: list[int] = []
    inner = optuna.samplers.TPESampler._sample

    def spy(self: object, view: optuna.Study, trial: object, space: object) -> object:
        sizes.append(len(view._get_trials(deepcopy=False)))
        return inner(self, view, trial, space)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optuna.samplers.TPESampler, "_sample", spy)
        near = proposals(study, 20)
    assert sizes and max(sizes) <= 100 + 20 + 1  # the view, not the 2,000 trials
    # Median distance to the minimum: ~0.04 here, 0.002 unbounded, ~0.25 at random.
    assert sorted(abs(x - 0.3) for x in near)[10] < 0.1


def test_history_is_an_option_of_model_based_samplers_only() -> None:
    assert check_options("tpe", {"history": 500}) is None
    assert check_options("tpe", {"history": None}) is None
    bad = check_options("tpe", {"history": 10})
    assert bad is not None and bad[0] == "history" and ">= 50" in bad[1]
    bad = check_options("tpe", {"history": "all"})
    assert bad is not None and bad[0] == "history"
    bad = check_options("random", {"history": 500})
    assert bad is not None and "has no option 'history'" in bad[1]


class _Trials:
    """A study as ``IntersectionSearchSpace`` reads it: its name and its trials."""

    study_name = "s"
    _study_id = 0

    def __init__(self) -> None:
        self.trials: list[FrozenTrial] = []

    def _get_trials(self, deepcopy: bool = False, use_cache: bool = False) -> list[FrozenTrial]:
        return list(self.trials)


@pytest.mark.parametrize("include_pruned", [True, False])
def test_the_incremental_search_space_is_optunas_intersection(include_pruned: bool) -> None:
    """Trials finish out of order, some with another range of a parameter or without it,
    some fail or are pruned: after each step the incremental space is the intersection
    computed from scratch over the whole study, and what Optuna's own class says."""
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.search_space import IntersectionSearchSpace, intersection_search_space

    rng = random.Random(7)
    common = {"n": IntDistribution(1, 9), "c": CategoricalDistribution(("a", "b"))}
    spaces = [
        {"x": FloatDistribution(0.0, 1.0), **common},
        {"x": FloatDistribution(0.0, 2.0), **common},
        common,
    ]
    study = _Trials()
    incremental = history.IncrementalIntersection(include_pruned)
    optunas = IntersectionSearchSpace(include_pruned)
    ends = [TrialState.COMPLETE] * 30 + [TrialState.PRUNED] * 3 + [TrialState.FAIL] * 2
    for step in range(120):
        for n in rng.sample(range(len(study.trials)), min(len(study.trials), 5)):
            t = study.trials[n]
            if t.state == TrialState.RUNNING and rng.random() < 0.5:
                state = rng.choice(ends)
                value = rng.random() if state == TrialState.COMPLETE else None
                done = create_trial(
                    state=state, params=t.params, distributions=t.distributions, value=value
                )
                done.number = n
                study.trials[n] = done
        dists = spaces[0] if step < 40 or rng.random() < 0.9 else rng.choice(spaces)
        params = {k: getattr(d, "low", "a") for k, d in dists.items()}
        new = create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
        new.number = len(study.trials)
        study.trials.append(new)
        expected = intersection_search_space(study.trials, include_pruned=include_pruned)
        got = incremental.calculate(study)  # type: ignore[arg-type]
        assert got == expected == optunas.calculate(study)  # type: ignore[arg-type]
        assert list(got) == sorted(got)
    assert "x" not in got and "n" in got  # a range changed; one parameter was always there


def test_bounded_samplers_keep_an_incremental_search_space() -> None:
    import supervisor.optuna_internals as internals

    tpe = sampler({"history": 60})
    study = optuna.create_study(sampler=tpe)
    proposals(study, 12)  # past the start-up trials: the model proposes
    space = getattr(tpe, internals.INTERSECTION_ATTRIBUTES[0])
    assert isinstance(space, history.IncrementalIntersection)
    assert space.counted == (TrialState.COMPLETE, TrialState.PRUNED)  # TPE's include_pruned
