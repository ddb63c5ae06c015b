"""The driver's ask/tell loop with a cheap benchmark: budgets, failures as data, resume."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from distributed import Client, LocalCluster
from optuna.trial import TrialState

from supervisor.clusters.handle import configure_dask
from supervisor.config import space
from supervisor.study import attrs
from supervisor.study.driver import Driver
from supervisor.study.events import Silent
from tests.toy_benchmark import ToyBenchmark

TOY = "tests.toy_benchmark:ToyBenchmark"


def experiment(
    tmp_path: Path,
    params: str,
    budget: str,
    options: str = "{}",
    target: str = TOY,
    sampler: str = "random",
) -> space.Experiment:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{target}", options: {options}}}\n'
        f"objectives: [loss]\nparams:\n{params}\nbudget: {budget}\nsampler: {sampler}\n"
        "seed: 3\n"
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
        # Where it ran and with what seed: the driver stores the result's provenance.
        where = t.user_attrs[attrs.PROVENANCE]
        assert where["node"] and where["cores"] >= 1 and where["seed"] == exp.seed + t.number


class Lines(Silent):
    """The lines a campaign shows its user."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)


@pytest.mark.parametrize(
    ("sampler", "trials", "note"),
    [
        ("tpe", 7, "7 trials with 3 in flight give the tpe sampler about 2.3 rounds"),
        ("tpe", 2, "2 trials with 2 in flight give the tpe sampler about 1.0 rounds"),
        ("tpe", 12, None),
        ("random", 7, None),
    ],
)
def test_a_learning_sampler_with_few_rounds_of_results_is_pointed_out(
    tmp_path: Path, threads_client: Client, sampler: str, trials: int, note: str | None
) -> None:
    """7 trials with 3 in flight: a proposal misses the results still running, so TPE
    learns from about 2 rounds of them, and the user is told before the first trial; 2
    trials run at once on 3 slots; 12 are 4 rounds, and random search learns from none."""
    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", f"{{trials: {trials}}}", sampler=sampler
    )
    shown = Lines()
    Driver(exp, make_study(exp), threads_client, slots=3, display=shown).run()
    notes = [line for line in shown.lines if "rounds of results" in line]
    tail = (
        " of results to learn from; fewer in flight or more trials give it more (README,"
        " Search at scale)"
    )
    assert notes == ([] if note is None else [f"note: {note}{tail}"])


@pytest.mark.parametrize(
    ("sampler", "note"),
    [
        ("cmaes", "numeric parameters that every trial has; it draws act, depth at random"),
        ("turbo", "parameters that every trial has; it draws depth at random"),
        ("tpe", None),
    ],
)
def test_parameters_a_sampler_draws_at_random_are_named_once(
    tmp_path: Path, threads_client: Client, sampler: str, note: str | None
) -> None:
    """CMA-ES models numbers only, and it, GP and turbo only the parameters every trial
    has: the campaign says which ones they draw at random, once, where Optuna warns for
    each of them in every trial."""
    params = (
        "  x: {type: float, low: -4, high: 4}\n  act: [relu, tanh]\n"
        "  depth: {type: int, low: 1, high: 3, when: {act: [relu]}}"
    )
    exp = experiment(tmp_path, params, "{trials: 2}", sampler=sampler)
    shown = Lines()
    Driver(exp, make_study(exp), threads_client, slots=2, display=shown).run()
    notes = [line for line in shown.lines if "at random" in line]
    tail = " (tpe models them)"
    assert notes == (
        [] if note is None else [f"note: the {sampler} sampler models only {note}{tail}"]
    )


def test_cmaes_does_not_warn_in_every_trial(caplog: pytest.LogCaptureFixture) -> None:
    from supervisor.config.samplers import make_sampler

    study = optuna.create_study(sampler=make_sampler("cmaes", {}, seed=1))
    with caplog.at_level("WARNING", logger="optuna"):
        study.optimize(
            lambda t: t.suggest_float("x", 0, 1) + len(t.suggest_categorical("a", ["p", "qq"])), 12
        )
    assert not [r for r in caplog.records if "independently" in r.getMessage()]


class ToyWithoutCheckpoints(ToyBenchmark):
    checkpoints = False


@pytest.mark.parametrize("keeps", [True, False])
def test_checkpoint_directories_are_cleaned_up_only_where_the_benchmark_keeps_them(
    tmp_path: Path, threads_client: Client, monkeypatch: pytest.MonkeyPatch, keeps: bool
) -> None:
    """A finished trial's checkpoints are removed; a benchmark that saves none costs the
    driver no file-system call per trial (after the first result says so)."""
    import supervisor.study.recorder as recorder

    removed: list[str] = []
    monkeypatch.setattr(recorder.shutil, "rmtree", lambda path, **_: removed.append(str(path)))
    target = TOY if keeps else f"{__name__}:ToyWithoutCheckpoints"
    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 6, epochs: 2}", target=target
    )
    study = make_study(exp)
    Driver(exp, study, threads_client, slots=2, run_dir=str(tmp_path)).run()
    assert counts(study) == {"COMPLETE": 6}
    if keeps:
        assert len(removed) == 6 and all("checkpoints" in path for path in removed)
    else:
        assert removed == []


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

    dist: dict[str, optuna.distributions.BaseDistribution] = {
        "x": optuna.distributions.FloatDistribution(-4, 4)
    }
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


# -- signals, fail fast, worker deaths, other drivers -----------------------------------


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGUSR1", 138)])
def test_sigterm_and_sigusr1_stop_like_ctrl_c_with_their_own_exit_code(
    tmp_path: Path,
    threads_client: Client,
    name: str,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What Slurm sends at walltime, on requeue (SIGTERM) and as its warning (SIGUSR1):
    nothing is lost, every running trial is recorded and queued again."""
    from supervisor.study.signals import BATCH_JOB_VARS

    for var in BATCH_JOB_VARS:  # outside a batch job: the handlers given back at once
        monkeypatch.delenv(var, raising=False)
    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 50, epochs: 1}", "{delay: 0.4}"
    )
    study = make_study(exp)
    before = signal.getsignal(getattr(signal, name))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), getattr(signal, name)))
    timer.start()
    summary = Driver(exp, study, threads_client, slots=2).run()
    timer.join()
    assert summary.stopped_by == "interrupt" and summary.signal == name
    assert summary.exit_code == code
    interrupted = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "interrupted"]
    assert interrupted and all(t.user_attrs["error"] == f"stopped by {name}" for t in interrupted)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == len(interrupted)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert signal.getsignal(getattr(signal, name)) is before, "its handler given back"


def test_a_model_that_always_raises_stops_the_campaign_within_five_trials(
    tmp_path: Path, threads_client: Client
) -> None:
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [raise]"
    exp = experiment(tmp_path, params, "{trials: 100, epochs: 1}", "{delay: 0.05}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.stopped_by == "failing" and summary.exit_code == 1
    assert summary.failure == (
        "the first 5 trials all failed with RuntimeError: model exploded on purpose"
    )
    c = counts(study)
    # Results already on their way when it stopped are recorded too; the rest of the
    # trials in flight are interrupted and queued again: the trials stay data.
    assert 5 <= c["FAIL:model"] <= 5 + 4 and c["RUNNING"] == 0
    assert c["FAIL:interrupted"] == len(study.get_trials(states=(TrialState.WAITING,)))
    assert summary.finished == c["FAIL:model"] < 100


@pytest.mark.parametrize(
    ("mode", "stops"), [("nan", False), ("diverge", False), ("nan_inputs", True)]
)
def test_a_training_that_diverges_after_finite_epochs_is_data_not_broken_code(
    tmp_path: Path, threads_client: Client, mode: str, stops: bool
) -> None:
    """Every trial's loss ends NaN. After finite epochs or steps that is a region of the
    space that diverges (the campaign spends its budget learning where); NaN from the
    first step on is broken data (it stops within fail_fast trials)."""
    params = f"  x: {{type: float, low: -4, high: 4}}\n  mode: [{mode}]"
    exp = experiment(tmp_path, params, "{trials: 8, epochs: 2}", "{delay: 0.01}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    c = counts(study)
    if stops:
        assert summary.stopped_by == "failing" and summary.exit_code == 1
        assert summary.failure is not None and "NonFiniteObjective" in summary.failure
        assert c["FAIL:model"] < 8
    else:
        assert summary.stopped_by == "budget" and summary.exit_code == 0, summary
        assert c["FAIL:model"] == 8 and summary.failure is None


def executing_keys(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_a_trial_queued_on_a_worker_that_died_keeps_its_attempts(tmp_path: Path) -> None:
    """One worker, one trial running on it and one queued behind it; kill -9 the worker:
    both run again, but only the one that had started used up an attempt."""
    configure_dask()
    params = "  x: {type: float, low: -4, high: 4}\n  mode: [sleep]\n  seconds: [1.6]"
    exp = experiment(tmp_path, params, "{trials: 3, epochs: 1}")
    study = make_study(exp)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        driver = Driver(exp, study, client, slots=1, prefetch=1)

        def kill_once_one_runs_and_one_waits() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.05)
                runs = list(driver.flight.futures.values())
                if len(runs) == 2 and any(r.worker for r in runs):
                    os.kill(next(iter(client.run(os.getpid).values())), signal.SIGKILL)
                    return

        killer = threading.Thread(target=kill_once_one_runs_and_one_waits)
        killer.start()
        summary = driver.run()
        killer.join()
    assert summary.finished == 3 and counts(study)["COMPLETE"] == 3
    lost = [t for t in study.trials if t.user_attrs.get(attrs.FAILURE) == "infrastructure"]
    assert len(lost) == 2, counts(study)
    ran, queued = sorted(lost, key=lambda t: "started" not in t.user_attrs)
    assert "started" in ran.user_attrs and "started" not in queued.user_attrs
    assert "never started: not counted as an attempt" in queued.user_attrs["error"]
    rerun = {t.user_attrs.get(attrs.RETRY_OF): t for t in study.trials if t.number > 1}
    assert rerun[ran.number].user_attrs[attrs.ATTEMPT] == 2
    assert rerun[queued.number].user_attrs[attrs.ATTEMPT] == 1
    assert rerun[queued.number].user_attrs[attrs.UNSTARTED] == 1


def another_drivers_trials(study: optuna.Study, driver: str, running: int, done: int) -> None:
    """Trials of a driver on another host, whose lease (heartbeat) is fresh."""
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + driver, time.time())
    for i in range(running + done):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})
        trial.set_user_attr(attrs.DRIVER, driver)
        if i < done:
            study.tell(trial, 1.0)


def test_a_driver_that_died_on_another_host_is_taken_over_when_its_lease_runs_out(
    tmp_path: Path, threads_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its RUNNING trials fill the budget; the new driver neither exits claiming the
    budget nor waits forever: once the lease is out, it closes them and runs them again."""
    from supervisor.study import recovery

    monkeypatch.setattr(recovery, "STALE_AFTER", 2.0)
    monkeypatch.setattr(recovery, "HEARTBEAT_EVERY", 0.3)
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 6, epochs: 1}")
    study = make_study(exp)
    another_drivers_trials(study, "elsewhere:4242:dead", running=3, done=3)
    started = time.monotonic()
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert time.monotonic() - started >= 1.5, "taken as alive while its lease held"
    assert summary.stopped_by == "budget" and summary.finished == 6 and summary.exit_code == 0
    assert summary.recovered.zombies == [3, 4, 5]
    c = counts(study)
    assert c["COMPLETE"] == 6 and c["FAIL:infrastructure"] == 3 and c["RUNNING"] == 0


def test_a_live_driver_s_trials_are_waited_for_not_taken(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 4, epochs: 1}")
    study = make_study(exp)
    other = "elsewhere:4242:alive"
    another_drivers_trials(study, other, running=2, done=2)

    def finish_them() -> None:
        time.sleep(1.0)
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            study.tell(t.number, 2.0)
        study.set_user_attr(attrs.HEARTBEAT_PREFIX + other, None)  # it stopped cleanly

    finisher = threading.Thread(target=finish_them)
    finisher.start()
    summary = Driver(exp, study, threads_client, slots=2).run()
    finisher.join()
    assert summary.stopped_by == "budget" and summary.finished == 4
    assert summary.recovered.zombies == [] and counts(study) == {"COMPLETE": 4}


def test_a_second_driver_waits_for_a_configuration_the_first_is_training(
    tmp_path: Path, threads_client: Client
) -> None:
    """The duplicate index is the study's: a configuration in flight under another driver
    is not trained again, its result is shared (and, proposed blind, not counted)."""
    from supervisor.study.storage import open_storage

    values = ", ".join(str(float(v)) for v in range(8))
    exp = experiment(tmp_path, f"  x: [{values}]", "{trials: 12, epochs: 2}", "{delay: 0.3}")
    url = f"journal:{tmp_path / 'journal.log'}"
    # Both samplers seeded alike: the second proposes what the first is training.
    studies = [make_study(exp, open_storage(url)) for _ in range(2)]  # type: ignore[arg-type]
    first = threading.Thread(target=Driver(exp, studies[0], threads_client, slots=2).run)
    first.start()
    # The first has asked and launched its trials (a fixed 0.3 s assumed so; two drivers
    # starting at one instant do train a configuration twice).
    deadline = time.monotonic() + 60
    while sum(attrs.DRIVER in t.user_attrs for t in studies[1].get_trials(deepcopy=False)) < 2:
        assert time.monotonic() < deadline, "the first driver asked no trial"
        time.sleep(0.01)
    Driver(exp, studies[1], threads_client, slots=2).run()
    first.join()
    trials = studies[1].get_trials()
    trained = [t.params["x"] for t in trials if "worker" in t.user_attrs]
    assert sorted(trained) == sorted(set(trained)), "a configuration trained twice"
    driver = {t.number: t.user_attrs[attrs.DRIVER] for t in trials}
    waited = [
        t
        for t in trials
        if t.user_attrs.get(attrs.DUPLICATE_KNOWN) is False
        and driver[t.user_attrs[attrs.DUPLICATE_OF]] != driver[t.number]
    ]
    assert waited, "the second driver waited on the first's trials"
    assert sum(attrs.counts_toward_budget(t) for t in trials) == 12


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_two_drivers_recovering_the_same_trial_close_and_requeue_it_once(
    tmp_path: Path, storage: str
) -> None:
    """Two drivers that resume a killed run together see the same dead trial RUNNING; the
    one that writes second used to stop with UpdateFinishedTrialError, or re-queue it a
    second time (its configuration trained twice)."""
    from supervisor.study import recovery
    from supervisor.study.storage import open_storage

    url = (
        f"journal:{tmp_path / 'j.log'}"
        if storage == "journal"
        else f"sqlite:///{tmp_path / 'd.db'}"
    )
    first = optuna.create_study(storage=open_storage(url), study_name="s")
    dead = f"{socket.gethostname()}:{2**22 + 12345}:dead"
    trial = first.ask({"x": optuna.distributions.FloatDistribution(-4, 4)})
    trial.set_user_attr(attrs.DRIVER, dead)
    second = optuna.load_study(storage=open_storage(url), study_name="s")
    stale = second.get_trials(deepcopy=False)  # read before the first driver recovers
    assert recovery.recover(first).zombies == [0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(second, "get_trials", lambda **_: stale)
        assert recovery.recover(second).zombies == []
    trials = second.get_trials(deepcopy=False)
    # The second queued its re-run before it lost the close, and took it back unrun.
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING, TrialState.FAIL]
    assert trials[2].user_attrs[attrs.FAILURE] == "surplus"
    assert not attrs.counts_toward_budget(trials[2])
