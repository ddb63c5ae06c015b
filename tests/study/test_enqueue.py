"""``enqueue:``: the space file's configurations train first, once, through the real driver
(``supervisor.config.enqueue``, ``supervisor.study.enqueue``)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from distributed import Client
from optuna.trial import TrialState

from supervisor.config import space
from supervisor.study.driver import Driver
from supervisor.study.enqueue import enqueue
from supervisor.study.storage import open_storage
from tests.faultkit import together
from tests.study.test_driver import make_study

SPACE = """\
benchmark: "tests.toy_benchmark:ToyBenchmark"
objectives: [loss]
params:
  x: {type: float, low: -4, high: 4}
  mode: [ok, raise]
  y: {type: int, low: 1, high: 4, when: {mode: raise}}
enqueue:
  - {x: 2.0, mode: ok}
  - {x: -1.5}
  - {mode: raise, y: 3}
budget: {trials: BUDGET, epochs: 1}
sampler: random
seed: 3
"""


def load(tmp_path: Path, budget: int) -> space.Experiment:
    path = tmp_path / "enq.yaml"
    path.write_text(SPACE.replace("BUDGET", str(budget)))
    return space.load(path)


def test_enqueued_configurations_train_first_and_the_sampler_fills_the_rest(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = load(tmp_path, 6)
    assert exp.enqueue == ({"x": 2.0, "mode": "ok"}, {"x": -1.5}, {"mode": "raise", "y": 3})
    study = make_study(exp)
    assert enqueue(study, exp.enqueue) == 3
    Driver(exp, study, threads_client, slots=1).run()
    first = sorted(study.trials, key=lambda t: t.number)[:3]
    assert first[0].params == {"x": 2.0, "mode": "ok"} and first[0].value == 0.0
    assert first[1].params["x"] == -1.5 and "mode" in first[1].params  # mode sampled
    assert first[2].params["mode"] == "raise" and first[2].params["y"] == 3
    assert first[2].state == TrialState.FAIL  # failures of enqueued trials are data too
    assert len(study.trials) == 6

    # A resume (a larger budget) queues none of them again.
    more = load(tmp_path, 8)
    assert enqueue(study, more.enqueue) == 0
    Driver(more, study, threads_client, slots=1).run()
    assert [t.params.get("x") for t in study.trials].count(2.0) == 1
    assert len(study.trials) == 8


def test_a_configuration_already_held_by_a_trial_is_not_queued(tmp_path: Path) -> None:
    exp = load(tmp_path, 6)
    study = make_study(exp)
    study.enqueue_trial({"x": -1.5})  # e.g. queued by an earlier run that was killed
    assert enqueue(study, exp.enqueue) == 2
    assert enqueue(study, exp.enqueue) == 0
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 3


def test_an_int_written_as_a_float_is_the_configuration_the_sampler_trained(
    tmp_path: Path,
) -> None:
    """``n: 2.0`` for an int parameter (and ``x: 2`` for a float one) is the int 2 (the
    float 2.0): an entry that repeats a trained configuration is not queued on a resume.
    It was queued, and the driver told it as a duplicate that used up a budget slot."""
    path = tmp_path / "typed.yaml"
    path.write_text(
        'benchmark: "tests.toy_benchmark:ToyBenchmark"\n'
        "params:\n"
        "  x: {type: float, low: -4, high: 4, step: 0.5}\n"
        "  n: {type: int, low: 1, high: 3}\n"
        "enqueue:\n"
        "  - {x: 2, n: 2.0}\n"
        "budget: {trials: 4}\n"
    )
    exp = space.load(path)
    assert [(type(v), v) for v in exp.enqueue[0].values()] == [(float, 2.0), (int, 2)]
    study = make_study(exp)
    drawn = optuna.trial.create_trial(  # the sampler drew it in an earlier run
        params={"x": 2.0, "n": 2},
        distributions={p.name: p.distribution() for p in exp.params},
        value=1.0,
    )
    study.add_trial(drawn)
    assert enqueue(study, exp.enqueue) == 0


def test_a_trial_queued_with_a_float_for_an_int_is_held(tmp_path: Path) -> None:
    """A trial an earlier run queued with ``n: 2.0`` holds the entry ``n: 2``."""
    exp = load(tmp_path, 4)
    study = make_study(exp)
    study.enqueue_trial({"mode": "raise", "y": 3.0})
    trial = study.ask()
    trial.suggest_categorical("mode", ["ok", "raise"])
    trial.suggest_int("y", 1, 4)
    study.tell(trial, 1.0)
    assert enqueue(study, ({"mode": "raise", "y": 3},)) == 0


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_drivers_starting_together_queue_each_configuration_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Two ``supervisor search`` of one space file started together on one storage: each
    read the study before the other queued, and both queued every entry (each trained
    twice, using up budget slots)."""
    import time

    import supervisor.study.enqueue as enqueue_module

    url = (
        f"journal:{tmp_path / 'journal.log'}"
        if kind == "journal"
        else f"sqlite:///{tmp_path}/s.db"
    )
    optuna.create_study(study_name="enq", storage=open_storage(url))
    exp = load(tmp_path, 6)
    key = enqueue_module.param_key

    def slow(params: dict[str, object]) -> object:
        time.sleep(0.2)  # between reading the study and queueing what it lacks
        return key(params)

    monkeypatch.setattr(enqueue_module, "param_key", slow)

    def start() -> int:
        return enqueue(optuna.load_study(study_name="enq", storage=open_storage(url)), exp.enqueue)

    queued = together(start)
    assert sorted(queued) == [0, 3]
    study = optuna.load_study(study_name="enq", storage=open_storage(url))
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 3
