"""CMA-ES with its scans of the study answered from an index proposes exactly what
Optuna's CmaEsSampler proposes: same seed, trials in flight told out of order, pruned
trials counted or not, on Optuna's in-memory storage and on the campaign journal (whose
log of finished trials the index reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from supervisor.config.cmaes_index import CmaIndex
from supervisor.config.samplers import make_sampler
from supervisor.study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRUNED = optuna.trial.TrialState.PRUNED


def _campaign(
    sampler: optuna.samplers.BaseSampler, storage: Any = None, trials: int = 90
) -> list[dict[str, Any]]:
    """``trials`` trials, six in flight, told in a shuffled order, every ninth pruned
    after reporting."""
    study = optuna.create_study(storage=storage, sampler=sampler, study_name="cma")
    proposed, running = [], []
    for step in range(trials):
        trial = study.ask()
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", 1e-3, 10.0, log=True)
        n = trial.suggest_int("n", 1, 9)
        proposed.append(dict(trial.params))
        running.append((trial, (x - 1) ** 2 + (y - 2) ** 2 + n / 3))
        if step % 9 == 8:
            trial, value = running.pop(0)
            trial.report(value + 1.0, 0)
            study.tell(trial, state=PRUNED)
        if len(running) == 6:
            for trial, value in (running[i] for i in (2, 0, 5, 3, 1, 4)):
                study.tell(trial, value)
            running = []
    return proposed


def _optunas(options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The same sampler with Optuna's own methods: CmaIndex's overrides taken out."""
    plain = make_sampler("cmaes", options, seed=5)
    cma = optuna.samplers.CmaEsSampler
    names = ("infer_relative_search_space", "_get_trials", "_restore_optimizer")
    members = {name: getattr(cma, name) for name in (*names, "_get_solution_trials")}
    plain.__class__ = type("Plain", (plain.__class__,), members)
    return plain


@pytest.mark.parametrize(
    "options",
    [{}, {"consider_pruned_trials": True}, {"popsize": 4}, {"use_separable_cma": True}],
)
def test_the_index_gives_optunas_proposals(options: dict[str, Any], tmp_path: Path) -> None:
    indexed = make_sampler("cmaes", options, seed=5)
    assert isinstance(indexed, CmaIndex)
    want = _campaign(_optunas(options))
    assert _campaign(indexed) == want
    assert indexed._index is not None and indexed._index.holder is not None, "not used"
    journal = open_storage(str(tmp_path / "journal.log"))
    assert _campaign(make_sampler("cmaes", options, seed=5), journal) == want


def _resumed(sampler: optuna.samplers.BaseSampler) -> list[Any]:
    """The proposal of a sampler that meets a study with history (a restarted driver)."""
    storage = optuna.storages.InMemoryStorage()
    _campaign(make_sampler("cmaes", {}, seed=5), storage, trials=40)  # 36 complete, 4 pruned
    study = optuna.load_study(study_name="cma", storage=storage, sampler=sampler)
    trial = study.ask()
    return [trial.suggest_float("x", -5.0, 5.0), trial.suggest_float("y", 1e-3, 10.0, log=True)]


def test_a_resumed_sampler_folds_in_the_history_and_proposes_as_optuna() -> None:
    indexed = make_sampler("cmaes", {}, seed=5)
    assert _resumed(indexed) == _resumed(_optunas({}))
    assert indexed._index is not None and len(indexed._index.complete) == 36


def _failures_in_last(options: dict[str, Any], seed: int, last: int = 60) -> int:
    """Trials of the last ``last`` of 150 that failed, eight in flight, where every x past
    0.2 fails (raised) and the best is just below that edge: CMA-ES starts at the centre,
    so most of its first distribution fails."""
    study = optuna.create_study(sampler=make_sampler("cmaes", options, seed=seed))
    running: list[optuna.trial.Trial] = []
    for _ in range(150):
        running.append(study.ask())
        if len(running) < 8:
            continue
        trial = running.pop(0)
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        if x > 0.2:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, (x - 0.15) ** 2 + (y - 0.5) ** 2)
    trials = study.get_trials(deepcopy=False)[-last:]
    return sum(t.state == optuna.trial.TrialState.FAIL for t in trials)


def test_failures_rank_last_in_their_generation_so_the_distribution_leaves_them() -> None:
    # Optuna's CMA-ES tells a generation once popsize of its trials complete: where most
    # fail it moves slowly, and where a generation fails whole it stays there.
    seeds = range(4)
    assert sum(_failures_in_last({"failures": "ignore"}, seed) for seed in seeds) >= 120
    assert sum(_failures_in_last({}, seed) for seed in seeds) <= 40  # failures: avoid


def _trial(value: float | None, x: float = 0.5) -> optuna.trial.FrozenTrial:
    state = optuna.trial.TrialState.FAIL if value is None else optuna.trial.TrialState.COMPLETE
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    return optuna.trial.create_trial(
        state=state, value=value, params={"x": x}, distributions=distributions
    )


def test_a_failed_trial_is_valued_below_every_value_of_its_generation() -> None:
    from supervisor.config.cmaes_index import valued

    generation = [_trial(2.0), _trial(None), _trial(-1.0)]
    assert [t.value for t in valued(generation, minimize=True)] == [2.0, 6.0, -1.0]
    assert [t.value for t in valued(generation, minimize=False)] == [2.0, -5.0, -1.0]
    assert generation[1].value is None  # the study's trial is not changed
    assert [t.value for t in valued([_trial(None)], minimize=True)] == [1.0]


def test_failed_trials_nearer_a_working_configuration_rank_higher() -> None:
    from supervisor.config.cmaes_index import valued

    far, near = _trial(None, x=0.9), _trial(None, x=0.3)
    generation = valued([far, near], minimize=True, working=[_trial(1.0, x=0.2)])
    assert generation[1].value < generation[0].value  # type: ignore[operator]
    generation = valued([far, near], minimize=False, working=[_trial(1.0, x=0.2)])
    assert generation[1].value > generation[0].value  # type: ignore[operator]


def _first_generation(warm: int, categorical: bool = False) -> list[tuple[float, float]]:
    """CMA-ES's first eight proposals in a study told ``warm`` trials of a warm start,
    spread over [0, 10]^2 (the best at (1, 1) itself), of a function whose minimum is
    at (1, 1)."""
    import random

    from optuna.distributions import CategoricalDistribution, FloatDistribution

    rng = random.Random(0)
    space: dict[str, Any] = {"x": FloatDistribution(0, 10), "y": FloatDistribution(0, 10)}
    if categorical:  # CMA-ES models numbers only: the choice is drawn at random
        space["c"] = CategoricalDistribution(["a", "b"])
    points = [(1.0, 1.0)] + [(rng.uniform(0, 10), rng.uniform(0, 10)) for _ in range(warm - 1)]
    study = optuna.create_study(sampler=make_sampler("cmaes", {"popsize": 8}, seed=3))
    study.add_trials(
        optuna.trial.create_trial(
            params={"x": x, "y": y, **({"c": "a"} if categorical else {})},
            distributions=space,
            value=(x - 1) ** 2 + (y - 1) ** 2,
            user_attrs={"warm_start": f"old#{i}"},
        )
        for i, (x, y) in enumerate(points)
    )
    proposed = []
    for _ in range(8):
        trial = study.ask(space)
        proposed.append((trial.params["x"], trial.params["y"]))
    return proposed


@pytest.mark.parametrize(("warm", "categorical"), [(3, False), (30, False), (30, True)])
def test_cmaes_starts_from_the_warm_start_not_the_centre_of_the_space(
    warm: int, categorical: bool
) -> None:
    """The trials of a warm start only counted as CMA-ES's start-up trials: its first
    generation was drawn around the centre of the space (5, 5), a sixth of its range wide,
    whatever they had measured. From 10 of them or more it starts where they were best
    (Optuna's WS-CMA-ES); from fewer, centred on the best."""
    proposed = _first_generation(warm, categorical)
    mean_x = sum(x for x, _ in proposed) / len(proposed)
    mean_y = sum(y for _, y in proposed) / len(proposed)
    assert abs(mean_x - 1) < 1.5 and abs(mean_y - 1) < 1.5, (mean_x, mean_y)
