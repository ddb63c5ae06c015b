"""A driver whose trials another driver took over (it found its heartbeat stale: a stalled
file system, a paused process) goes on instead of crashing on its next write to them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from supervisor.clusters.handle import configure_dask
from supervisor.study.driver import Driver
from supervisor.study.storage import open_storage
from tests.study.test_driver import experiment, make_study


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        configure_dask(),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_driver_whose_running_trial_another_closed_finishes_its_campaign(
    tmp_path: Path, client: Any, kind: str
) -> None:
    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 4, epochs: 2}", "{delay: 1.0}"
    )
    url = f"journal:{tmp_path / 'j.log'}" if kind == "journal" else f"sqlite:///{tmp_path}/s.db"
    study = make_study(exp, open_storage(url))
    other = make_study(exp, open_storage(url))  # the driver that takes over
    closed: list[int] = []

    def take_over() -> None:
        deadline = time.monotonic() + 30
        while not closed and time.monotonic() < deadline:
            for t in other.get_trials(states=(TrialState.RUNNING,)):
                other.tell(t.number, state=TrialState.FAIL)  # mid-epoch: writes follow
                closed.append(t.number)
                break
            time.sleep(0.05)

    thread = threading.Thread(target=take_over)
    thread.start()
    summary = Driver(exp, study, client, slots=2).run()
    thread.join()
    assert closed, "no trial was running to take over"
    assert summary.stopped_by == "budget"
    fresh = optuna.load_study(study_name=exp.study_name, storage=open_storage(url))
    states = {t.number: t.state for t in fresh.trials}
    assert states[closed[0]] == TrialState.FAIL  # the first close stands
    assert sum(s == TrialState.COMPLETE for s in states.values()) >= 3
