"""The driver's ask/tell loop with a cheap benchmark: budgets, failures as data, resume."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from distributed import Client, LocalCluster
from optuna.trial import TrialState

from supervisor.clusters.handle import configure_dask
from supervisor.config import space
from supervisor.study import attrs
from supervisor.study.driver import Driver

TOY = "tests.toy_benchmark:ToyBenchmark"


def experiment(tmp_path: Path, params: str, budget: str, options: str = "{}") -> space.Experiment:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}", options: {options}}}\n'
        f"objectives: [loss]\nparams:\n{params}\nbudget: {budget}\nsampler: random\nseed: 3\n"
    )
    return space.load(path)


def make_study(exp: space.Experiment, storage: str | None = None) -> optuna.Study:
    return optuna.create_study(
        study_name=exp.study_name,
        storage=storage,
        directions=exp.directions,
        sampler=optuna.samplers.RandomSampler(seed=exp.seed),
        load_if_exists=True,
    )


@pytest.fixture(scope="module")
def threads_client() -> Iterator[Client]:
    configure_dask()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def counts(study: optuna.Study) -> Counter[str]:
    out: Counter[str] = Counter()
    for t in study.get_trials(deepcopy=False):
        kind = t.user_attrs.get(attrs.FAILURE)
        out[t.state.name + (f":{kind}" if kind else "")] += 1
    return out


def test_runs_exactly_the_budget_and_records_each_trial(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 11, epochs: 3}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.finished == 11 and summary.stopped_by == "budget"
    assert counts(study) == {"COMPLETE": 11}
    for t in study.trials:
        assert t.value == pytest.approx((t.params["x"] - 2.0) ** 2)
        assert sorted(t.intermediate_values) == [0, 1, 2]  # the learning curve
        assert t.user_attrs["worker"] and t.user_attrs["duration_s"] >= 0
        assert t.user_attrs["metrics"]["n_params"] == 1.0
        assert {"train_seconds", "node_seconds", "loss"} <= set(t.user_attrs["metrics"])


def test_failed_trials_are_data_and_the_campaign_goes_on(
    tmp_path: Path, threads_client: Client
) -> None:
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [ok, raise, nan, inf]"
    exp = experiment(tmp_path, params, "{trials: 24, epochs: 1}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.finished == 24
    by_mode: dict[str, set[str]] = {}
    for t in study.trials:
        by_mode.setdefault(t.params["mode"], set()).add(t.state.name)
        if t.state == TrialState.FAIL:
            assert t.user_attrs[attrs.FAILURE] == "model"
            assert t.user_attrs["error"]
    assert by_mode["ok"] == {"COMPLETE"}
    assert by_mode["raise"] == by_mode["nan"] == by_mode["inf"] == {"FAIL"}
    errors = {t.params["mode"]: t.user_attrs["error"] for t in study.trials if t.value is None}
    assert "exploded on purpose" in errors["raise"]
    assert "nan" in errors["nan"] and "inf" in errors["inf"]


def test_zombies_of_a_dead_driver_are_closed_and_rerun(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 6, epochs: 1}")
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = make_study(exp, storage)
    # A driver that died mid-campaign: two trials left RUNNING, one finished.
    dead = f"{socket.gethostname()}:{2**22 + 12345}:dead"
    for x in (1.0, -1.0, 3.0):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})
        trial.set_user_attr(attrs.DRIVER, dead)
        if x == 3.0:
            study.tell(trial, 1.0)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.recovered.zombies == [0, 1]
    c = counts(study)
    assert c["COMPLETE"] == 6 and c["FAIL:infrastructure"] == 2 and sum(c.values()) == 8
    rerun = [t for t in study.trials if t.user_attrs.get(attrs.RETRY_OF) in (0, 1)]
    assert sorted(t.params["x"] for t in rerun) == sorted(t.params["x"] for t in study.trials[:2])
    assert all(t.state == TrialState.COMPLETE for t in rerun)


def test_a_trial_asked_by_a_driver_killed_before_marking_it_is_a_zombie() -> None:
    """kill -9 between ``study.ask()`` and recording the driver on the trial: with that
    driver dead and no other alive, the unmarked RUNNING trial is closed and re-queued;
    while another driver of the study lives, it may be that driver's fresh ask: kept."""
    from supervisor.study import recovery

    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    for live_driver, closed in ((False, [0]), (True, [])):
        study = optuna.create_study()
        dead = f"{socket.gethostname()}:{2**22 + 12345}:dead"
        study.set_user_attr(attrs.HEARTBEAT_PREFIX + dead, time.time())
        if live_driver:
            alive = f"{socket.gethostname()}:{os.getpid()}:alive"
            study.set_user_attr(attrs.HEARTBEAT_PREFIX + alive, time.time())
        study.ask(dist)  # no supervisor:driver attribute yet
        assert recovery.recover(study).zombies == closed
        states = [t.state for t in study.trials]
        assert states[0] == (TrialState.FAIL if closed else TrialState.RUNNING)
        assert (TrialState.WAITING in states) == bool(closed)


def test_timeout_stops_submitting_and_reports_it(tmp_path: Path, threads_client: Client) -> None:
    exp = experiment(
        tmp_path,
        "  x: {type: float, low: -4, high: 4}",
        "{trials: 100, epochs: 1, timeout: 1}",
        options="{delay: 0.3}",
    )
    study = make_study(exp)
    started = time.monotonic()
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.stopped_by == "timeout"
    assert time.monotonic() - started < 5
    assert 2 <= summary.finished < 20
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_ctrl_c_records_running_trials_and_queues_them_again(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(
        tmp_path,
        "  x: {type: float, low: -4, high: 4}",
        "{trials: 50, epochs: 1}",
        options="{delay: 0.4}",
    )
    study = make_study(exp)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    summary = Driver(exp, study, threads_client, slots=2).run()
    timer.join()
    assert summary.stopped_by == "interrupt"
    interrupted = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "interrupted"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert interrupted and len(waiting) == len(interrupted)
    assert sorted(t.params["x"] for t in interrupted) == sorted(
        w.system_attrs["fixed_params"]["x"] for w in waiting
    )
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert summary.finished == counts(study)["COMPLETE"]


def test_a_trial_that_kills_its_worker_is_retried_then_blamed(tmp_path: Path) -> None:
    configure_dask()
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [ok, exit]"
    exp = experiment(tmp_path, params, "{trials: 5, epochs: 1}")
    study = make_study(exp)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        summary = Driver(exp, study, client, slots=2, prefetch=0).run()
    assert summary.finished == 5
    for t in study.trials:
        if t.params["mode"] == "ok":
            # Innocent trials may be hit when their worker dies, but are never blamed.
            assert t.state == TrialState.COMPLETE or t.user_attrs[attrs.FAILURE] != "model"
        elif t.user_attrs.get(attrs.FAILURE) == "model":
            assert t.user_attrs["error_type"] == "WorkerDiedRepeatedly"
            assert t.user_attrs[attrs.ATTEMPT] == 3
    died = [t for t in study.trials if t.params["mode"] == "exit"]
    assert died, "the random sampler with seed 3 picks mode=exit at least once"
    assert all(t.state == TrialState.FAIL for t in died)
