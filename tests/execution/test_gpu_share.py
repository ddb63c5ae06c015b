"""Trial processes of a node of several GPUs spread over them: ``supervisor calibrate``'s
probes and the local cluster's workers each see one GPU (i mod G), not all of them, of
which every framework took the first while the others idled."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from supervisor.execution import calibrate

GROWTH = "TF_FORCE_GPU_ALLOW_GROWTH"


class Probe:
    """A calibration probe that is ready at once and reports 10 samples/s."""

    started: list[dict[str, str]] = []

    def __init__(self, command: list[str], *, env: dict[str, str], **kwargs: Any) -> None:
        Probe.started.append(env)
        self.stdin, self.stdout = io.StringIO(), io.StringIO("ready\nrate 10\n")

    def poll(self) -> int:
        return 0

    def wait(self) -> int:
        return 0


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # what Slurm gives a job of 2 GPUs
    for key in ("HIP_VISIBLE_DEVICES", GROWTH, "XLA_PYTHON_CLIENT_PREALLOCATE"):
        monkeypatch.delenv(key, raising=False)


def test_calibration_probes_spread_over_the_node_s_gpus(
    two_gpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All probes trained on GPU 0: a packing of 2 trials measured both on one GPU, and
    the profile it was written into put 1 trial on each of 2 GPUs."""
    monkeypatch.setattr(calibrate.subprocess, "Popen", Probe)
    Probe.started.clear()
    m = calibrate.measure("t:T", {}, calibrate.Packing(1, 2), 1, [0, 1])
    assert m.per_trial == [10.0, 10.0]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in Probe.started] == ["3", "5"]
    assert not any(GROWTH in env for env in Probe.started)  # each GPU its own probe's
    Probe.started.clear()
    calibrate.measure("t:T", {}, calibrate.Packing(1, 3), 1, [0, 1, 2])
    assert [env["CUDA_VISIBLE_DEVICES"] for env in Probe.started] == ["3", "5", "3"]
    assert all(env[GROWTH] == "true" for env in Probe.started)  # GPU 3 is shared


def test_local_workers_spread_over_the_node_s_gpus(
    two_gpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every local worker's trials trained on the first GPU while the others idled."""
    import distributed

    from supervisor.clusters import local

    made: dict[str, Any] = {}

    def cluster(**kwargs: Any) -> None:
        made.update(kwargs)
        raise RuntimeError("not started")

    monkeypatch.setattr(distributed, "SpecCluster", cluster)
    with pytest.raises(RuntimeError, match=r"not started"):
        local.make_local(workers=3, threads=1, dashboard="127.0.0.1:0")
    envs = [spec["options"]["env"] for spec in made["workers"].values()]
    assert [env.get("CUDA_VISIBLE_DEVICES") for env in envs] == ["3", "5", "3"]
    assert all(env[GROWTH] == "true" for env in envs)


def test_a_calibration_written_into_a_profile_says_the_gpus_it_spread_over(
    tmp_path: Path,
) -> None:
    """A job of 1 GPU, calibrated on a node of 4 (8 trials over them): 2 per GPU."""
    from supervisor.clusters import profile
    from supervisor.execution import calibrate_profile

    cal = calibrate.Calibration(
        "weather", "h", "cpu", 8, {}, 1, 8, 100.0, [], 0.0, gpus=4
    )  # fmt: skip
    path = tmp_path / "gpu.yaml"
    path.write_text("kind: slurm\nmemory: 8GiB\ncores: 8\ngpus: 1\n")
    calibrate_profile.write_into_profile(cal, path)
    assert profile.load(str(path)).trials_per_gpu == 2
