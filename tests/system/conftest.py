"""Fixtures of the Slurm tests (tests/system/slurmkit.py).

The campaigns that last minutes (the driver's job chain through several walltimes, worker
jobs expiring) start as soon as the first Slurm test runs and go on beside the others on
their own node; their tests run after every other Slurm test and only wait for them and
check what they left. That keeps the Slurm tier within a few minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests import faultkit
from tests.system import slurmkit
from tests.system.slurmkit import BACKGROUND, CHAIN_BUDGET, WALLTIME_BUDGET, Campaign, Chain

# Session fixtures started by the first Slurm test when a collected test asks for them.
EARLY = ("driver_chain", "expiring_walltimes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of early campaigns go right after the last other Slurm test."""
    early = [i for i in items if set(EARLY) & set(getattr(i, "fixturenames", ()))]
    if not early:
        return
    rest = [i for i in items if i not in early]
    slurm = [n for n, i in enumerate(rest) if i.get_closest_marker("slurm")]
    cut = slurm[-1] + 1 if slurm else len(rest)
    items[:] = [*rest[:cut], *early, *rest[cut:]]


def start_early(request: pytest.FixtureRequest) -> None:
    """Start the early campaigns that the session's tests ask for (once: fixtures are
    cached). A failure here is raised again, cached, in the test that asks for it."""
    wanted = {
        name
        for item in request.session.items
        for name in getattr(item, "fixturenames", ())
        if name in EARLY
    }
    for name in sorted(wanted):
        with contextlib.suppress(Exception, pytest.skip.Exception):
            request.getfixturevalue(name)


@pytest.fixture(scope="session")
def slurm(request: pytest.FixtureRequest) -> None:
    """A Slurm that answers (a real cluster is used as it is)."""
    problem = slurmkit.slurm_problem()
    if problem:
        pytest.skip(problem)
    start_early(request)


@pytest.fixture(scope="session")
def slurm_test_cluster() -> None:
    """The 4-node test cluster of slurm.sh, whose nodes the fault tests kill and drain."""
    problem = slurmkit.cluster_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def slurm_nodes(slurm_test_cluster: None, request: pytest.FixtureRequest) -> None:
    """The test cluster, with the early campaigns started."""
    start_early(request)


@pytest.fixture(scope="session")
def expiring_walltimes(
    slurm_test_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Campaign]]:
    """Two campaigns whose 1-minute worker jobs end several times while they run: one
    retiring its workers before the walltime (the default), one with no lifetime, whose
    jobs Slurm kills at their walltime mid-trial."""
    folder = tmp_path_factory.mktemp("walltimes")
    campaigns = {
        "retiring": Campaign.toy(
            folder, "retiring", BACKGROUND, trials=WALLTIME_BUDGET, jobs=2, delay=1.0,
            epochs=2, walltime="00:01:00",
        ),
        "killed": Campaign.toy(
            folder, "walltime-killed", BACKGROUND, trials=WALLTIME_BUDGET, jobs=2, delay=1.0,
            epochs=2, walltime="00:01:00", more="lifetime: false\n",
        ),
    }  # fmt: skip
    try:
        for campaign in campaigns.values():
            campaign.start()
        yield campaigns
    finally:
        for campaign in campaigns.values():
            campaign.stop()


@pytest.fixture(scope="session")
def driver_chain(
    slurm_test_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """`supervisor submit` of a campaign longer than two 2-minute driver jobs, its driver
    jobs and workers on the BACKGROUND node."""
    folder = tmp_path_factory.mktemp("chain")
    study = f"chain-{os.getpid()}"  # its jobs' name: not another session's
    faultkit.toy_space(folder, CHAIN_BUDGET, delay=1.5, epochs=2, study=study)
    slurmkit.profile(folder, BACKGROUND, jobs=2)
    env = {**os.environ, "SBATCH_CONSTRAINT": BACKGROUND}  # the driver job and its successors
    done = subprocess.run(
        [
            sys.executable, "-m", "supervisor.cli", "submit", f"{study}.yaml",
            "--launcher", "slurm-test.yaml", "--walltime", "00:02:00", "--grace", "30",
            "--max-jobs", "6", "--", "--no-report", "--dashboard", "127.0.0.1:0",
        ],
        cwd=folder, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    chain = Chain(folder, study, CHAIN_BUDGET, done.stdout.split("job ")[-1].split(";")[0])
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield chain
    finally:
        slurmkit.run("scancel", "-n", f"sv-{study}-driver")
        slurmkit.run("scancel", "-n", f"sv-{study}")
