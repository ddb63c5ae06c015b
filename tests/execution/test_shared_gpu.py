"""Trial processes that share a GPU allocate its memory as they need it: TensorFlow
maps nearly all of a GPU's memory and JAX 75% of it at their first use, so every
trial process on the GPU but the first found none left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from supervisor.clusters import gpu_pin
from supervisor.clusters.launch import open_cluster
from supervisor.execution import calibrate

GROW = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def test_trials_packed_on_a_gpu_grow_their_memory_unless_the_user_said_otherwise() -> None:
    two = {"SUPERVISOR_GPUS": "1", "SUPERVISOR_TRIALS_PER_GPU": "2"}
    assert gpu_pin.pin("job-1", two) == "0"
    assert GROW.items() <= two.items()
    alone = {"SUPERVISOR_GPUS": "1", "SUPERVISOR_TRIALS_PER_GPU": "1"}
    gpu_pin.pin("job-0", alone)
    assert not GROW.keys() & alone.keys()  # one trial per GPU keeps the fast default
    mine = {**two, "TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    gpu_pin.pin("job-1", mine)
    assert mine["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"


def test_local_workers_share_the_machine_s_gpus_without_preallocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in GROW:
        monkeypatch.delenv(key, raising=False)
    with open_cluster(workers=2, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        seen = handle.client.run(lambda: {k: os.environ.get(k) for k in GROW})
    assert list(seen.values()) == [GROW, GROW]


def test_calibration_probes_packed_together_grow_their_gpu_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    envs: list[dict[str, str]] = []

    class Started(Exception):
        pass

    def popen(*args: Any, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
        envs.append(env)
        raise Started

    for key in GROW:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(subprocess, "Popen", popen)
    for trials in (1, 2):
        with pytest.raises(Started):
            calibrate.measure("x:Y", {}, calibrate.Packing(1, trials), 1, [0, 1])
    assert not GROW.keys() & envs[0].keys()
    assert GROW.items() <= envs[1].items()
