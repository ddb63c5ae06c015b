"""Lifetime-aware placement: a trial does not start on a worker that retires before it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import optuna
import psutil
import pytest
from distributed import Client, LocalCluster, Nanny
from optuna.trial import TrialState

from supervisor.clusters.handle import configure_dask
from supervisor.study import placement
from supervisor.study.driver import Driver
from tests.study.test_driver import experiment, make_study


@contextlib.contextmanager
def two_workers(**options: Any) -> Iterator[tuple[Client, dict[str, int], str, str]]:
    """A local cluster of two worker processes: the client, the workers' pids, the worker
    a test freezes and the healthy one."""
    configure_dask()
    with (
        LocalCluster(n_workers=2, processes=True, dashboard_address=None, **options) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
        frozen, healthy = sorted(pids)
        yield client, pids, frozen, healthy


@contextlib.contextmanager
def suspended(pid: int) -> Iterator[None]:
    """Process ``pid`` stopped over the block (SIGSTOP, as a suspended job), then resumed."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        psutil.Process(pid).resume()


class FakeClient:
    """The two calls Placement makes, answered from a table."""

    def __init__(self, workers: dict[str, dict[str, float | None]]) -> None:
        self.workers = workers
        self.runs = 0

    def scheduler_info(self, n_workers: int = -1) -> dict[str, Any]:
        return {"workers": {w: {} for w in self.workers}}

    def run(self, fn: Any, workers: list[str], on_error: str) -> dict[str, Any]:
        self.runs += 1
        return {w: self.workers[w] for w in workers}


def test_only_workers_that_outlive_the_estimate_are_eligible() -> None:
    now = 1000.0
    client = FakeClient(
        {
            "tcp://short": {"lifetime": 100.0, "started": now - 95.0},  # 5 s left
            "tcp://long": {"lifetime": 100.0, "started": now - 10.0},  # 90 s left
            "tcp://forever": {"lifetime": None, "started": now - 500.0},
        }
    )
    p = placement.Placement(client, clock=lambda: now)
    assert p.workers_for_next_trial() is None  # no estimate before MIN_SAMPLES trials
    for seconds in (2.0, 3.0, 4.0):
        p.finished(seconds)
    estimate = p.estimate()
    assert estimate is not None and 4.0 < estimate < 6.0  # p90 of 2-4 s with the margin
    assert p.workers_for_next_trial() == ["tcp://forever", "tcp://long", "tcp://short"]
    p.finished(60.0)  # trials now take about a minute: the short worker cannot fit one
    for seconds in (60.0, 60.0):
        p.finished(seconds)
    assert p.workers_for_next_trial() == ["tcp://forever", "tcp://long"]
    assert client.runs == 1  # lifetimes are asked once per worker, not per trial


def test_no_restriction_without_lifetimes_or_when_nothing_fits() -> None:
    now = 50.0
    p = placement.Placement(FakeClient({"tcp://a": {"lifetime": None}}), clock=lambda: now)
    for _ in range(3):
        p.finished(10.0)
    assert p.workers_for_next_trial() is None  # nobody retires: no restriction
    dying = FakeClient({"tcp://a": {"lifetime": 60.0, "started": 0.0}})  # 10 s left
    p = placement.Placement(dying, clock=lambda: now)
    for _ in range(3):
        p.finished(30.0)
    assert p.workers_for_next_trial() is None  # runs anywhere; checkpoints resume it


@pytest.mark.faults
def test_the_driver_keeps_long_trials_off_a_retiring_worker(tmp_path: Path) -> None:
    configure_dask()
    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 16, epochs: 2}",
        options="{delay: 0.8}",
    )  # fmt: skip
    study = make_study(exp)
    lifetime = 14.0
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster:
        for name, extra in (("short", {"lifetime": f"{lifetime}s", "lifetime_stagger": "0s"}),
                            ("long", {})):  # fmt: skip
            cluster.worker_spec[name] = {"cls": Nanny, "options": {"nthreads": 1, **extra}}
        cluster.sync(cluster._correct_state)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            short = next(
                a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "short"
            )
            born = client.run(placement._lifetime_of, workers=[short])[short]["started"]
            assert isinstance(born, float)
            summary = Driver(exp, study, client, slots=2, prefetch=0).run()
    assert summary.finished == 16
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 16
    on_short = [t for t in done if t.user_attrs["worker"] == short]
    assert on_short, "the short-lived worker took trials while it had time"
    for t in on_short:  # each finished before the worker retired
        assert t.user_attrs["finished"] <= born + lifetime, (t.number, t.user_attrs)
    failures = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failures == [], [t.user_attrs.get("error") for t in failures]
    assert time.time() > born  # the clock the deadlines use is the workers'
    assert isinstance(study, optuna.Study)


def test_a_worker_that_does_not_answer_holds_the_driver_seconds_not_minutes() -> None:
    """A suspended worker job (scontrol suspend) held Dask's broadcast of the lifetime
    question for its 30 s connect timeout, and asked again at each look the driver spent
    most of its time waiting: a Slurm campaign stalled for minutes. The question now runs on
    a thread of its own, waited for ASK_WAIT seconds once, never again while it is out."""
    with two_workers() as (client, pids, frozen, healthy):
        with suspended(pids[frozen]):
            place = placement.Placement(client, clock=time.monotonic)
            for seconds in (1.0, 2.0, 3.0):
                place.finished(seconds)
            took = []
            for _ in range(3):
                place._looked = -float("inf")  # a look now, as every REFRESH_EVERY seconds
                started = time.monotonic()
                place.workers_for_next_trial()
                took.append(time.monotonic() - started)
            assert max(took) < placement.ASK_WAIT + 3, took
            assert sum(took) < 2 * placement.ASK_WAIT + 3, took  # waited on once, not again
            # Given up after GIVE_UP seconds: asked again (workers that joined since too).
            place._asking.since -= placement.GIVE_UP  # type: ignore[union-attr]
            place._looked = -float("inf")
            place.workers_for_next_trial()
            assert place._asking is not None and place._asking.workers == sorted(pids)
        assert healthy in client.run(os.getpid)  # the cluster goes on


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _mark(value: str, dask_worker: Any = None) -> None:
    dask_worker.supervisor_mark = value


def _marked(dask_worker: Any) -> str | None:
    return getattr(dask_worker, "supervisor_mark", None)


def test_a_frozen_worker_holds_neither_the_timeout_nor_a_stop() -> None:
    """At the campaign's timeout the driver asks the workers which trials they execute
    (the others, queued, are cancelled); on Ctrl-C it tells them to stop their trials.
    Both were one Dask broadcast without a time bound: a frozen worker (a suspended job)
    held the driver for as long as it was frozen. Each is now waited for ASK_WAIT
    seconds; a frozen worker's trials count as executing (never cancelled unseen)."""
    with two_workers(threads_per_worker=1) as (client, pids, frozen, healthy):
        running = {w: client.submit(_sleep, 60, workers=[w], pure=False) for w in pids}
        queued = {w: client.submit(_sleep, 61, workers=[w], pure=False) for w in pids}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = client.run(placement._begun)
            if all(str(running[w].key) in state.get(w, []) for w in pids):
                break
            time.sleep(0.1)
        with suspended(pids[frozen]):
            started = time.monotonic()
            keys = placement.begun_keys(client, {"fallback"})
            assert time.monotonic() - started < 2 * placement.ASK_WAIT + 3  # all, then each
            assert str(running[healthy].key) in keys
            assert str(queued[healthy].key) not in keys  # cancelled at the timeout
            assert {str(running[frozen].key), str(queued[frozen].key)} <= keys

            started = time.monotonic()
            placement.tell_workers(client, _mark, "stop")
            assert time.monotonic() - started < placement.ASK_WAIT + 3
            assert client.run(_marked, workers=[healthy]) == {healthy: "stop"}
        client.cancel([*running.values(), *queued.values()], force=True)


def _fail() -> None:
    raise RuntimeError("diverged")


def test_a_task_that_ended_counts_as_begun_not_queued() -> None:
    """A stop cancels the trials no worker has begun. A trial that had ended, its result
    not yet taken by the driver, was among them (a worker's ``executing`` set no longer
    holds it): cancelled as "not started", its result lost and its configuration trained
    again (tests/study/test_stop_request.py failed one run in four)."""
    with two_workers(threads_per_worker=1) as (client, _pids, _, healthy):
        ended = client.submit(_sleep, 0.0, workers=[healthy], pure=False)
        failed = client.submit(_fail, workers=[healthy], pure=False)
        distributed.wait([ended, failed], timeout=30)
        running = client.submit(_sleep, 60, workers=[healthy], pure=False)
        queued = client.submit(_sleep, 61, workers=[healthy], pure=False)
        deadline = time.monotonic() + 30
        while str(running.key) not in client.run(placement._begun)[healthy]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        keys = placement.begun_keys(client, {"fallback"})
        assert {str(ended.key), str(failed.key), str(running.key)} <= keys
        assert str(queued.key) not in keys
        client.cancel([running, queued], force=True)


def _watch(dask_worker: Any = None) -> None:
    from types import SimpleNamespace

    from supervisor.execution import channel

    spec = SimpleNamespace(verdict_timeout=5.0)
    channel._controls[("s", 1)] = channel.TrialControl(spec)  # type: ignore[arg-type]


def _pruned(dask_worker: Any = None) -> bool:
    from supervisor.execution import channel

    return channel._controls[("s", 1)].stop


def test_a_frozen_worker_does_not_hold_the_verdicts_of_the_others() -> None:
    """The driver sends pruning verdicts from one thread, one worker after the other: a
    verdict to a frozen worker held every later one for as long as it was frozen (every
    judged epoch on every worker waited VERDICT_TIMEOUT, none was pruned)."""
    from supervisor.execution import channel

    with two_workers() as (client, pids, frozen, healthy):
        client.run(_watch, workers=[healthy])
        sender = channel.DriverChannel(client, channel.topic("frozen-test"))
        try:
            with suspended(pids[frozen]):
                sender.send_verdict(frozen, ("s", 0, 0, False))
                time.sleep(0.5)  # its delivery is under way
                sender.send_verdict(healthy, ("s", 1, 0, True))
                deadline = time.monotonic() + channel.VERDICT_TIMEOUT + 5
                while not client.run(_pruned, workers=[healthy])[healthy]:
                    assert time.monotonic() < deadline, "the verdict never reached its worker"
                    time.sleep(0.2)
        finally:
            sender.close()


def test_a_finished_trial_s_frozen_worker_holds_the_driver_seconds() -> None:
    """A trial that ended just before its worker froze (a suspended job) left its result
    there: the driver, fetching it itself when the results collector had not brought it,
    waited for as long as the worker was frozen (no heartbeat: other drivers took its
    trials over). The fetch now waits FETCH_WAIT seconds and is tried again later."""
    from distributed import wait

    from supervisor.execution import channel

    with two_workers() as (client, pids, frozen, healthy):
        held = client.submit(_sleep, 0.0, workers=[frozen], pure=False)
        free = client.submit(_sleep, 0.1, workers=[healthy], pure=False)
        wait([held, free])
        late: dict[str, float] = {}
        with suspended(pids[frozen]):
            started = time.monotonic()
            assert channel.fetch_done([held, free], late) == [(free, 0.1)]
            assert time.monotonic() - started < channel.FETCH_WAIT + 3
            started = time.monotonic()
            assert channel.fetch_done([held], late) == []  # not waited on again at once
            assert time.monotonic() - started < 1
        late[str(held.key)] = 0.0  # LATE_RETRY seconds later
        assert channel.fetch_done([held], late) == [(held, 0.0)]
        assert not late  # forgotten once it came: a campaign of days kept every one
