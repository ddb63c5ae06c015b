"""A calibration probe runs the benchmark's code, as a trial does: without the storage's
password (``supervisor calibrate`` gave probes the whole environment, PGPASSWORD too)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.execution import calibrate
from tests.toy_benchmark import ToyBenchmark

KEYS = ("PGPASSWORD", "MYSQL_PWD", "HF_TOKEN")


class EnvSpy(ToyBenchmark):
    """Writes what its process's environment holds to the file ``SPY_FILE`` names."""

    def load_data(self, seed: int) -> dict[str, Any]:
        seen = {k: os.environ.get(k) for k in KEYS}
        Path(os.environ["SPY_FILE"]).write_text(json.dumps(seen))
        return Data(super().load_data(seed))


class Data(dict[str, Any]):
    x_train = (0.0,) * 4  # what a probe counts its samples by


def test_a_calibration_probe_gets_no_storage_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-secret")
    monkeypatch.setenv("MYSQL_PWD", "my-secret")
    monkeypatch.setenv("HF_TOKEN", "for-the-benchmark")
    monkeypatch.setenv("SPY_FILE", str(tmp_path / "seen.json"))
    packing = calibrate.Packing(threads=1, trials=1)
    cores = calibrate.usable_cores()[:1]
    calibrate.measure(f"{__name__}:EnvSpy", {}, packing, 1, cores, timeout=60)
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen == {"PGPASSWORD": None, "MYSQL_PWD": None, "HF_TOKEN": "for-the-benchmark"}
