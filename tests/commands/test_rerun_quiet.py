"""``supervisor rerun``: what the trial process prints comes through, but for TensorFlow's
start-up notices, which other commands that load it leave out too."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

import supervisor
import supervisor.rundir as rundir
from supervisor.study import attrs
from supervisor.study.storage import open_storage
from tests.toy_benchmark import ToyBenchmark

NOTICE = "I0000 00:00:1796636238.829894    9815 port.cc:153] oneDNN custom operations are on"
WARNING = "W0000 00:00:1758131045.228000 3722035 gpu_device.cc:2341] Cannot dlopen some GPU"


class LoudToy(ToyBenchmark):
    """Prints what TensorFlow prints as it loads in a trial process: a notice, a warning."""

    def fit(self, model: Any, data: Any, params: Mapping[str, Any], *args: Any) -> Any:
        os.write(2, f"{NOTICE}\n{WARNING}\n".encode())
        return super().fit(model, data, params, *args)


def loud_run(work: Path) -> None:
    """A run of one complete trial of ``LoudToy``, as a search leaves it (no cluster)."""
    (work / "loud.yaml").write_text(
        f"benchmark: {{name: '{__name__}:LoudToy'}}\nobjectives: [loss]\n"
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 1, epochs: 1}\n"
    )
    run_dir = work / "runs" / "loud"
    run_dir.mkdir(parents=True)
    study = optuna.create_study(
        study_name="loud", storage=open_storage(rundir.journal_url(run_dir))
    )
    held = {attrs.METRICS: {"loss": 1.0}, attrs.PROVENANCE: {"seed": 3, "threads": 1}}
    dist = {"x": FloatDistribution(-4, 4)}
    study.add_trial(
        create_trial(params={"x": 1.0}, distributions=dist, value=1.0, user_attrs=held)
    )
    rundir.write_record(run_dir, rundir.RunRecord("loud", None, "loud.yaml", "supervisor search"))


def test_a_rerun_prints_none_of_tensorflow_s_start_up_notices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loud_run(tmp_path)
    # As a user's shell starts the command: TensorFlow not loaded, no log level set.
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert supervisor.open_run("loud").rerun(0).identical
    err = capfd.readouterr().err
    assert NOTICE not in err  # it came before the comparison, twice per library
    assert WARNING in err  # warnings and errors still show
