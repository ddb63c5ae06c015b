"""A trial run again (Ctrl-C, walltime, a lost worker, a dead driver) stays a member of the
CMA-ES generation its parameters were drawn for: the generation is told once ``popsize``
of its trials complete, re-runs included, not after ``popsize`` more new trials."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from supervisor.config.samplers import make_sampler
from supervisor.study import attrs, recovery
from supervisor.study.events import Silent
from supervisor.study.recorder import Recorder
from tests.study.test_driver import experiment

POPSIZE = 4
GENERATION = "cma:generation"
DEAD = f"{socket.gethostname()}:{2**22 + 12345}:dead"


def _suggest(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -4, 4) - 1) ** 2 + trial.suggest_float("y", -4, 4) ** 2


def _rerun_by(how: str, tmp_path: Path) -> Callable[[optuna.Study, optuna.Trial], None]:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 4, epochs: 1}")

    def act(study: optuna.Study, trial: optuna.Trial) -> None:
        if how == "dead driver":
            trial.set_user_attr(attrs.DRIVER, DEAD)
            study.set_user_attr(attrs.HEARTBEAT_PREFIX + DEAD, 1.0)
            recovery.recover(study)
            return
        rec = Recorder(exp, study, Silent(), None, max_attempts=3)
        if how == "interrupted":
            rec.interrupted(trial, "Interrupted", "stopped by the user (Ctrl-C)")
        else:
            rec.worker_lost(trial, "KilledWorker", "its worker died", started=True)

    return act


@pytest.mark.parametrize("how", ["interrupted", "worker lost", "dead driver"])
def test_a_cmaes_trial_run_again_completes_its_own_generation(tmp_path: Path, how: str) -> None:
    sampler = make_sampler("cmaes", {"popsize": POPSIZE}, seed=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_suggest, n_trials=1)  # the start-up trial: CMA-ES begins after it
    first = [study.ask() for _ in range(POPSIZE)]  # generation 0, all in flight
    values = [_suggest(trial) for trial in first]
    assert {t.system_attrs.get(GENERATION) for t in study.get_trials()[1:]} == {0}
    for trial, value in zip(first[1:], values[1:], strict=True):
        study.tell(trial, value)
    _rerun_by(how, tmp_path)(study, first[0])  # its re-run is queued, it fails
    rerun = study.ask()
    assert rerun.user_attrs[attrs.RERUN_OF] == first[0].number
    study.tell(rerun, _suggest(rerun))
    # The generation is complete: the next trial is the first of generation 1. Without
    # the re-run counted, generation 0 asked a fifth trial.
    following = study.ask()
    _suggest(following)
    assert study.get_trials()[-2].system_attrs.get(GENERATION) == 0
    assert study.get_trials()[-1].system_attrs.get(GENERATION) == 1


@pytest.mark.parametrize("sampler", ["grid", "bruteforce"])
def test_a_resume_that_closes_the_last_point_of_a_grid_does_not_crash(sampler: str) -> None:
    """A grid search killed while its last point ran: the resume closed that trial,
    Optuna's GridSampler (and BruteForceSampler) saw its space covered and called
    study.stop(), which raises outside study.optimize, and the search ended with a
    RuntimeError traceback (exit 1) before training anything; the next try went on."""
    grid = {"x": [0.0, 1.0, 2.0]}
    study = optuna.create_study(sampler=make_sampler(sampler, {}, seed=1, grid=grid))
    dist = optuna.distributions.FloatDistribution(0.0, 2.0, step=1.0)
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0.0, 2.0, step=1.0))
    last = study.ask()
    last.suggest_float("x", 0.0, 2.0, step=1.0)
    last.set_user_attr(attrs.DRIVER, DEAD)
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + DEAD, 1.0)
    recovered = recovery.recover(study)
    assert recovered.zombies == [last.number]
    rerun = study.ask({"x": dist})  # the lost point, queued again, trains
    assert rerun.params == last.params and rerun.user_attrs[attrs.RERUN_OF] == last.number
