"""Per-trial provenance: every result says where the trial ran, what it held, its seeds
and node settings; batch job, node share and GPU share come from the job's environment."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.execution import provenance
from supervisor.execution.node import NodeSettings
from supervisor.execution.worker import run_trial
from tests.execution.test_worker import spec


def test_every_result_carries_where_it_ran_and_how_to_rerun_it() -> None:
    settings = NodeSettings(xla="off", precision="float32")
    good = run_trial(spec(7, threads=2, node=settings))
    bad = run_trial(spec(8, params={"x": 1.0, "mode": "raise"}))
    for result in (good, bad):  # a model failure is traced to its node as well
        found: dict[str, Any] = result.extra["provenance"]
        assert found["node"] and found["host"] and found["cpu"]
        assert found["data_seed"] == 0
    found = good.extra["provenance"]
    assert found["seed"] == 7 and bad.extra["provenance"]["seed"] == 8
    assert (found["threads"], found["ranks"], found["cores"]) == (2, 1, 2)
    assert found["node_cores"] and found["node_cores"] >= 1
    assert found["gpus"] == 0.0  # no batch job gave it a GPU
    # The settings in force: the space file's, and the dtype policy they resolved to.
    assert found["settings"] == {"xla": "off", "precision": "float32", "dtype_policy": "float32"}


def test_batch_job_node_share_and_gpu_share_come_from_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("SLURM_JOB_ID", "SLURMD_NODENAME", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURMD_NODENAME", "n3")
    monkeypatch.setenv(provenance.JOB_CORES_ENV, "16")
    monkeypatch.setenv(provenance.GPUS_ENV, "2")
    monkeypatch.setenv(provenance.TRIALS_PER_GPU_ENV, "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # gpu_pin narrowed the worker to one
    found = provenance.trial_provenance(4, {"xla": "auto"}, ranks=2)
    assert found["job"] == {"system": "slurm", "job_id": "4242"}
    assert found["node"] == "n3"
    assert (found["cores"], found["node_cores"]) == (8, 16)
    assert found["gpus"] == 0.5  # one GPU shared by two trials
    assert found["devices"]["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv(provenance.GPUS_ENV, "0")
    assert provenance.trial_provenance(1, {})["gpus"] == 0.0
