"""A real campaign on a real Slurm: `supervisor search --launcher slurm` submits worker jobs,
which spread over the nodes.

Needs a Slurm that answers `sinfo` (tests/system/slurm.sh up starts a 4-node one on this
host); skipped, with the reason, only where there is none. Faults: test_slurm_faults.py;
the driver as a job chain: test_slurm_submit.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from supervisor.study import attrs
from supervisor.study.storage import load_study
from tests.system import slurmkit
from tests.system.slurmkit import FOREGROUND, Campaign

pytestmark = pytest.mark.slurm
TOY = "tests.toy_benchmark:ToyBenchmark"


def jobs_named(name: str) -> dict[str, str]:
    """Job id -> state of the jobs with this name in squeue."""
    return {job: state for job, state, _ in slurmkit.squeue(name)}


def test_search_runs_its_trials_in_slurm_jobs_and_leaves_none(tmp_path: Path, slurm: None) -> None:
    study = f"slurm-{os.getpid()}"
    job_name = f"sv-{study}"  # how the campaign names its worker jobs
    (tmp_path / "toy.yaml").write_text(
        f'study: {study}\nbenchmark: {{name: "{TOY}", options: {{delay: 0.3}}}}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 6, epochs: 2}\nsampler: random\nseed: 2\n"
    )
    log = tmp_path / "search.log"
    command = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml"]
    command += ["--launcher", "slurm", "--plain", "--no-report", "--dashboard", "127.0.0.1:0"]
    started = time.time()
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        seen: dict[str, set[str]] = {}
        try:
            while proc.poll() is None and time.time() - started < 120:
                for job, state in jobs_named(job_name).items():
                    seen.setdefault(job, set()).add(state)
                time.sleep(0.3)
        finally:
            if proc.poll() is None:
                proc.kill()
    output = log.read_text()
    assert proc.wait() == 0, output
    assert "Finished trials: 6 of 6 requested" in output
    assert "slurm (" in output and "TLS on, scheduler tls://" in output

    # squeue showed the worker jobs running while the search ran (max_jobs: 2)
    assert 1 <= len(seen) <= 2, seen
    assert all("RUNNING" in states for states in seen.values()), seen
    # ... and the trials ran in them, over TLS
    run_dir = tmp_path / "runs" / study
    trials = load_study(f"journal:{run_dir}/journal.log", study).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6
    assert all(t.user_attrs["worker"].startswith("tls://") for t in complete)
    for job in seen:
        assert (run_dir / "jobs" / f"{job_name}-{job}.err").exists()
    first = min(t.user_attrs["started"] for t in complete)
    print(f"\nfirst trial started {first - started:.1f} s after `supervisor search` began")

    # none of the campaign's jobs is left once it is over
    deadline = time.time() + 30
    while jobs_named(job_name) and time.time() < deadline:
        time.sleep(0.5)
    assert jobs_named(job_name) == {}


def test_a_campaign_spreads_over_the_nodes_and_records_each_trials_node(
    tmp_path: Path, slurm_nodes: None
) -> None:
    """Three 1-core worker jobs on three nodes (the partition puts a job on its least
    loaded node): the trials ran on all three, and each records the node Slurm named."""
    budget = 12
    campaign = Campaign.toy(
        tmp_path, "spread", "|".join(FOREGROUND), trials=budget, jobs=3, delay=0.4, epochs=2
    )
    try:
        study = campaign.start().finish(timeout=120)
    finally:
        campaign.stop()
    slurmkit.exact(study, budget)
    nodes = {t.user_attrs[attrs.HOSTNAME] for t in study.trials if t.state == TrialState.COMPLETE}
    ran_on = {job.node for job in campaign.watch.jobs.values() if job.first_running}
    print(f"\ntrials ran on {sorted(nodes)}; the campaign's jobs on {sorted(ran_on)}")
    assert len(nodes) >= 3 and nodes <= set(FOREGROUND), nodes
    assert nodes <= ran_on  # the node a trial names is one its campaign's jobs ran on


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("memory: 1GiB\nqueue: nosuchpart", "invalid partition specified: nosuchpart"),
        ("memory: 100000GiB", "sbatch refuses its worker jobs"),  # more than a node has
    ],
)
def test_worker_jobs_slurm_would_refuse_are_refused_before_anything_is_written(
    tmp_path: Path, slurm: None, line: str, says: str
) -> None:
    """dask-jobqueue logs a refused sbatch and never asks again: the search waited for
    workers forever, its run directory written."""
    (tmp_path / "toy.yaml").write_text(
        f'study: refused\nbenchmark: "{TOY}"\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 2}\nsampler: random\n"
    )
    (tmp_path / "p.yaml").write_text(f"kind: slurm\ncores: 1\nprocesses: 1\nmax_jobs: 1\n{line}\n")
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--launcher", "p.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
