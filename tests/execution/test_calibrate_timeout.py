"""A calibration probe that hangs (a deadlock, a GPU that never answers) is a failed
packing after a time limit, not a calibrate that never ends; one that dies while the
others warm up is a failed packing, not a crash."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.execution import calibrate
from tests.toy_classifier import ToyClassifier

PIDS_ENV = "TEST_HUNG_PROBE_PIDS"


class HangingWhenPacked(ToyClassifier):
    """Trains alone; probes packed together (they share a GPU: see
    ``shared_gpu_environment``) wait forever, with a child process of their own."""

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> Any:
        if os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH") == "true":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            (Path(os.environ[PIDS_ENV]) / f"{os.getpid()}-{child.pid}").touch()
            time.sleep(600)
        return super().fit(model, data, params, epochs, report)


class DyingAfterWarmUp(ToyClassifier):
    """Packed, the first probe to warm up dies half a second later, while the other
    still warms up (the OOM killer took it)."""

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> Any:
        if os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH") == "true" and not hasattr(self, "warm"):
            self.warm = True
            try:
                os.close(os.open(Path(os.environ[PIDS_ENV]) / "first", os.O_CREAT | os.O_EXCL))
                threading.Timer(0.5, os._exit, (1,)).start()
            except FileExistsError:
                time.sleep(3)
        return super().fit(model, data, params, epochs, report)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")  # a zombie is dead


@pytest.mark.timeout(240)
def test_a_hung_packing_times_out_its_probes_are_killed_and_calibrate_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from supervisor.commands.calibration import calibrate as command

    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv(PIDS_ENV, str(pids))
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    # 5 x the lone probe's time, at least 3 s: not the 2 minutes' floor of a real node.
    monkeypatch.setattr(calibrate, "TIMEOUT_FACTOR", 5)
    monkeypatch.setattr(calibrate, "TIMEOUT_FLOOR_S", 3.0)
    target = f"{__name__}:HangingWhenPacked"
    command(target, [], tiny=False, epochs=1, cores=None, write=None)
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["1", "1"] and "failed" not in out[1]
    # The limit is said with where it came from: the lone trial's time, or the floor.
    assert out[2].startswith("            1           2          -  failed: timed out after ")
    assert out[2].endswith(" s, at least 3 s)") and "(5 x the lone trial's " in out[2]
    assert out[3].split()[:2] == ["2", "1"] and "failed" not in out[3]
    assert out[4].startswith("recommended: ")
    hung = [int(pid) for name in os.listdir(pids) for pid in name.split("-")]
    assert len(hung) == 4  # both probes of the packing, each with its child
    deadline = time.monotonic() + 10
    while any(map(alive, hung)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, hung)), "orphans of the hung probes still run"


def test_a_probe_that_dies_before_the_others_are_ready_fails_its_packing_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Telling the dead probe to start its timed epochs raised BrokenPipeError: calibrate
    ended with a traceback after every packing before it had been measured."""
    from supervisor.commands.calibration import calibrate as command

    monkeypatch.setenv(PIDS_ENV, str(tmp_path))
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    command(f"{__name__}:DyingAfterWarmUp", [], tiny=False, epochs=1, cores=None, write=None)
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith(
        "            1           2          -  failed: calibration probe died"
    )
    assert out[3].split()[:2] == ["2", "1"] and "failed" not in out[3]


class HangingAlways(ToyClassifier):
    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> Any:
        (Path(os.environ[PIDS_ENV]) / str(os.getpid())).touch()
        time.sleep(600)


@pytest.mark.timeout(60)
def test_a_hung_first_probe_times_out_is_killed_and_nothing_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first probe (one trial alone, whose time sets the later packings' limit) had
    no limit at all: a hung one hung calibrate forever."""
    from supervisor.commands.calibration import calibrate as command
    from supervisor.errors import UserError

    monkeypatch.setenv(PIDS_ENV, str(tmp_path))
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    with pytest.raises(UserError) as raised:
        command(f"{__name__}:HangingAlways", [], False, 1, 1, None, probe_timeout=1)
    assert str(raised.value) == (
        "the first probe (1 trial x 1 thread(s) alone) timed out after 1 s: it loads the"
        " data, trains a warm-up epoch and the timed one(s) in that time; nothing was"
        " measured; --probe-timeout (now 1 s) gives it longer"
    )
    assert not (tmp_path / "cal").exists() or not list((tmp_path / "cal").iterdir())
    for probe in (int(name) for name in os.listdir(tmp_path) if name.isdigit()):
        assert not alive(probe), "the hung probe still runs"
    # A limit that is none is refused before anything runs.
    with pytest.raises(UserError, match=r"^--probe-timeout inf: expected seconds, at least 1$"):
        command(f"{__name__}:HangingAlways", [], False, 1, 1, None, probe_timeout=math.inf)


def test_a_probe_ends_when_calibrate_is_killed(tmp_path: Path) -> None:
    """Killed before it could stop them (kill -9, its own OOM kill), calibrate left its
    probes training on the node's cores: a hung one forever."""
    env = {**os.environ, PIDS_ENV: str(tmp_path), calibrate.CACHE_ENV: str(tmp_path / "cal")}
    command = [sys.executable, "-m", "supervisor.cli", "calibrate", f"{__name__}:HangingAlways"]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not os.listdir(tmp_path) or os.listdir(tmp_path) == ["cal"]:
            assert time.monotonic() < deadline and parent.poll() is None, "no probe started"
            time.sleep(0.1)
    finally:
        parent.kill()
        parent.wait()
    (probe,) = [int(name) for name in os.listdir(tmp_path) if name.isdigit()]
    deadline = time.monotonic() + 10
    while alive(probe) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(probe):
        os.kill(probe, 9)
        pytest.fail("the probe outlived calibrate")
