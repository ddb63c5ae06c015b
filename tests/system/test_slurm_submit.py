"""The driver as a chain of batch jobs on the test Slurm: `supervisor submit` with 2-minute
driver jobs, a budget more than two of them can finish. Slurm warns each job 30 s before
its walltime (--signal=B:USR1@30); its driver stops cleanly, the job submits the next link,
and the last link finishes the exact budget. The chain starts with the first Slurm test
and runs beside the others on its own node (conftest.py)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from supervisor.study import attrs
from supervisor.study.storage import load_study
from tests import faultkit
from tests.system import slurmkit
from tests.system.slurmkit import CHAIN_BUDGET, Chain

pytestmark = pytest.mark.slurm


def test_the_driver_renews_itself_across_walltimes_until_the_budget_is_done(
    driver_chain: Chain,
) -> None:
    chain = driver_chain
    deadline = time.monotonic() + 420
    while slurmkit.squeue(f"sv-{chain.study}-driver"):
        assert time.monotonic() < deadline, "the driver chain is still running after 7 min"
        time.sleep(1)
    links = json.loads((chain.run_dir / "driver" / "chain.json").read_text())
    logs = [(chain.run_dir / "driver" / f"{link['job_id']}.log").read_text() for link in links]
    study = load_study(f"journal:{chain.run_dir}/journal.log", chain.study)
    per_driver = Counter(
        t.user_attrs[attrs.DRIVER] for t in study.trials if attrs.counts_toward_budget(t)
    )
    print(f"\n{len(links)} driver jobs; trials per link: {list(per_driver.values())}")
    for link, log in zip(links, logs, strict=True):
        print(f"-- job {link['job_id']}:\n{log[-600:]}")

    slurmkit.exact(study, CHAIN_BUDGET, "driver job chain: walltime warnings", len(links) - 1)
    assert len(links) >= 3 and len(per_driver) >= 3, (links, per_driver)
    assert chain.first_job == links[0]["job_id"]
    for log in logs[:-1]:  # each link but the last stopped at its warning, in time
        assert "Stopped: SIGUSR1 received" in log, log[-2000:]
        assert "next driver job continues" in log and "same command again" not in log
    assert f"Finished trials: {CHAIN_BUDGET} of {CHAIN_BUDGET} requested" in logs[-1]
    assert not any("DUE TO TIME LIMIT" in log for log in logs)
    for t in slurmkit.failures(study):  # trials a warning stopped: run again, never lost
        assert t.user_attrs[attrs.FAILURE] in ("interrupted", "infrastructure"), t.user_attrs

    status = chain.cli("status", chain.study)
    assert status.returncode == 0, status.stderr
    ids = ", ".join(link["job_id"] for link in links)
    assert f"Driver jobs: {len(links)} ({ids})" in status.stdout, status.stdout
    assert faultkit.finished(study) == CHAIN_BUDGET
