"""Calibration probes run as a search's trials run: on no cores of their own (without the
storage's password: ``test_probe_secrets``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.execution import calibrate
from supervisor.execution.trial_host import TrialHost
from tests.execution.test_worker import spec
from tests.toy_classifier import ToyClassifier, ToyData

PLACES_ENV = "SUPERVISOR_TEST_PLACES"  # a folder: each probe writes its cores there


class Placed(ToyClassifier):
    """The toy classifier, whose process says on which cores it may run."""

    def load_data(self, seed: int) -> ToyData:
        cores = sorted(os.sched_getaffinity(0))
        (Path(os.environ[PLACES_ENV]) / str(os.getpid())).write_text(json.dumps(cores))
        return super().load_data(seed)


def _places(folder: Path) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted(folder.iterdir())]


def test_probes_are_not_pinned_as_a_search_s_trials_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each probe ran on cores of its own (sched_setaffinity) while a search's trial
    processes run anywhere in their worker's cores: the packing a search used was
    measured otherwise than it ran (and pinning gained nothing measurable)."""
    places = tmp_path / "places"
    places.mkdir()
    monkeypatch.setenv(PLACES_ENV, str(places))
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: sorted(os.sched_getaffinity(0))[:2])
    cal = calibrate.calibrate("placed", f"{__name__}:Placed", {"n": 20})
    assert all(row["samples_per_s"] > 0 for row in cal.table)
    probes = sum(row["trials_per_node"] for row in cal.table)
    assert _places(places) == [sorted(os.sched_getaffinity(0))] * probes
    # A search's trial process (a worker's trial host) is placed alike: every core here.
    host = TrialHost()
    try:
        trial = host.run(spec(0, isolation="process"))
    finally:
        host.stop()
    assert trial.status == "complete"
    assert trial.extra["provenance"]["cpus_visible"] == len(os.sched_getaffinity(0))


def test_calibrate_cores_confines_the_probes_together_to_that_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--cores 1`` measures an allocation of 1 core: every probe shares it, as the
    trials of a 1-core job share theirs."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cache"))
    places = tmp_path / "places"
    places.mkdir()
    monkeypatch.setenv(PLACES_ENV, str(places))
    first = calibrate.usable_cores()[0]
    cal = calibrate.calibrate("placed", f"{__name__}:Placed", {"n": 20}, max_cores=1)
    assert cal.cores == 1
    assert _places(places) == [[first]]
