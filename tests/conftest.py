"""Shared fixtures. The repository root is importable so workers find tests.toy_benchmark."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
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


# pytest-xdist runs the suite in three processes on 2 cores (pyproject.toml): with two,
# the cores stood idle ~30 % of the time (tests that wait on Slurm walltimes, a database
# away, trials that sleep); fresh clones took 22:56 with two, 19:13 and 22:44 with three
# (a shared machine: each test runs slower beside two others, the whole no slower; with
# about 100 s of conformance tests cut in between).
# A module's tests run in one of them, so its module fixtures (campaigns, trained models)
# are made once; the modules that share one real component run in one process, one after
# the other (the test cluster's nodes are killed and drained; the PostgreSQL tests share
# a server), and first: they mostly wait, beside the other processes' tests.
SHARED = {
    "slurm": ("tests/system/test_slurm.py", "tests/system/test_slurm_faults.py",
              "tests/system/test_slurm_submit.py", "tests/system/test_slurm_handover.py"),
    "postgres": ("tests/system/test_postgres.py", "tests/system/test_secrets.py"),
}  # fmt: skip
USES = {  # the fixtures (or the mark of the same name) that use the component
    "slurm": {"slurm", "slurm_nodes", "slurm_test_cluster", "expiring_walltimes", "driver_chain"},
    "postgres": {"pg_url"},
}
GROUP_OF = {module: group for group, modules in SHARED.items() for module in modules}


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that uses a shared component outside the modules listed for it would run
    beside them: refused."""
    module = _module(item.nodeid)
    for group, fixtures in USES.items():
        uses = item.get_closest_marker(group) or fixtures & set(getattr(item, "fixturenames", ()))
        if uses and GROUP_OF.get(module) != group:
            raise pytest.UsageError(f"{item.nodeid} uses {group}: add {module} to SHARED there")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared components' modules first (the order within each is kept)."""
    items.sort(key=lambda item: _module(item.nodeid) not in GROUP_OF)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units: a module, or a shared component's modules. (pytest-xdist's own
    ``--dist loadgroup`` groups nothing under pytest 9.2: pytest-xdist issue 1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return GROUP_OF.get(_module(nodeid), _module(nodeid))

    return ByModule(config, log)


FAULT_ROW = "fault_row"
FAULT_ROWS: list[Any] = []  # every worker's, in the order their tests ended


@pytest.fixture(autouse=True)
def _fault_rows_in_the_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """The rows a test adds to the fault table travel in its report, which pytest-xdist
    sends from the worker that ran it to the process that prints the table."""
    yield
    faultkit = sys.modules.get("tests.faultkit")
    if faultkit is not None and faultkit.ROWS:
        rows, faultkit.ROWS[:] = list(faultkit.ROWS), []
        request.node.user_properties.extend((FAULT_ROW, asdict(row)) for row in rows)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        FAULT_ROWS.extend(value for key, value in report.user_properties if key == FAULT_ROW)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault-injection suite's table (tests/faultkit.py), shown and kept as an artifact."""
    if not FAULT_ROWS:
        return
    from tests import faultkit

    text = faultkit.table([faultkit.FaultRow(**row) for row in FAULT_ROWS])
    terminalreporter.write_sep("=", "faults injected")
    terminalreporter.write_line(text)
    folder = Path(os.environ.get("PYTEST_ARTIFACTS") or "/tmp/supervisor-test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fault-table.txt").write_text(text + "\n")
    terminalreporter.write_line(f"(also in {folder / 'fault-table.txt'})")
