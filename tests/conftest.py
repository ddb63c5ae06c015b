"""Shared fixtures. The repository root is importable so workers find tests.toy_benchmark."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Worker processes started by Dask and subprocesses of the CLI inherit this.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A `supervisor calibrate` result saved on this host must not change how tests pack trials.
os.environ["SUPERVISOR_CALIBRATION_DIR"] = str(ROOT / ".pytest_cache" / "calibration")


@pytest.fixture(scope="module")
def threads_client() -> Iterator[Any]:
    """A Dask client of two single-thread workers in this process: cheap, for trials of
    the toy benchmarks through the real driver."""
    from distributed import Client, LocalCluster

    from supervisor.clusters.handle import configure_dask

    configure_dask()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault-injection suite's table (tests/faultkit.py), shown and kept as an artifact."""
    faultkit = sys.modules.get("tests.faultkit")
    if faultkit is None or not faultkit.ROWS:
        return
    text = faultkit.table()
    terminalreporter.write_sep("=", "faults injected")
    terminalreporter.write_line(text)
    folder = Path(os.environ.get("PYTEST_ARTIFACTS") or "/tmp/supervisor-test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fault-table.txt").write_text(text + "\n")
    terminalreporter.write_line(f"(also in {folder / 'fault-table.txt'})")
