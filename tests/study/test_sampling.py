"""Sampler randomness per trial: a resumed run or a second driver never replays the
proposals of the first, and a fresh campaign is still reproducible from its seed."""

from __future__ import annotations

import importlib.util
import warnings

import optuna
import pytest

from supervisor.config.samplers import SAMPLERS, check, make_sampler, random_states

SPACE = {
    "x": optuna.distributions.FloatDistribution(-4, 4),
    "c": optuna.distributions.CategoricalDistribution(list(range(50))),
}
# Samplers that draw at random; grid and brute force take unvisited points by design.
RANDOM = [
    name
    for name in ("random", "tpe", "qmc", "nsgaii", "nsgaiii", "gp", "cmaes", "turbo")
    if (need := SAMPLERS[name].needs) is None or importlib.util.find_spec(need)
]


def propose(study: optuna.Study, n: int) -> list[tuple[float, int]]:
    out = []
    for _ in range(n):
        trial = study.ask(SPACE)
        out.append((round(trial.params["x"], 9), trial.params["c"]))
        study.tell(trial, trial.params["x"] ** 2)
    return out


def sampler(name: str, seed: int = 5) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make_sampler(name, {}, seed)


@pytest.mark.parametrize("name", RANDOM)
def test_a_restarted_sampler_proposes_new_points_and_a_fresh_one_repeats_itself(
    name: str,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler(name))
    first = propose(study, 12)
    study.sampler = sampler(name)  # the driver restarted: the same seed from the space file
    resumed = propose(study, 12)
    assert not set(first) & set(resumed), "a resumed run replayed the first run's points"
    again = propose(optuna.create_study(sampler=sampler(name)), 12)
    assert again == first, "a fresh campaign is reproducible from its seed"
    other_seed = propose(optuna.create_study(sampler=sampler(name, seed=6)), 12)
    assert other_seed != first


def test_two_drivers_on_one_study_propose_different_points() -> None:
    storage = optuna.storages.InMemoryStorage()
    one = optuna.create_study(study_name="s", storage=storage, sampler=sampler("random"))
    two = optuna.load_study(study_name="s", storage=storage, sampler=sampler("random"))
    proposals = [p for _ in range(6) for p in (*propose(one, 1), *propose(two, 1))]
    assert len(set(proposals)) == len(proposals) == 12


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_keeps_its_class_and_has_its_randomness_found(name: str) -> None:
    entry = SAMPLERS[name]
    if entry.needs and importlib.util.find_spec(entry.needs) is None:
        # Not installed here (GP needs torch): the space file is refused, saying what to do.
        problem = check(name, {}, 1)
        assert problem is not None and f"pip install {entry.needs}" in problem
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        made = make_sampler(name, {}, 1, grid={"x": [1, 2]})
    assert isinstance(made, entry.load())
    # Were Optuna to move a sampler's random state where it is not looked for, a resumed
    # campaign would replay it again: this test says so first.
    assert random_states(made), f"{entry.cls}: no random state found to reseed per trial"
