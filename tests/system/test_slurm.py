"""A real campaign on a real Slurm: `supervisor search --launcher slurm` submits worker jobs.

Needs a Slurm that answers `sinfo` (tests/system/slurm.sh up starts a single-node one);
skipped, with the reason, only where there is none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from supervisor.study.storage import load_study

pytestmark = pytest.mark.slurm
TOY = "tests.toy_benchmark:ToyBenchmark"


def slurm_problem() -> str | None:
    """Why no Slurm can be used here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm here (no sinfo/sbatch); `tests/system/slurm.sh up` installs one"
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        return "Slurm does not answer: sinfo timed out"
    if result.returncode != 0:
        return f"Slurm does not answer: {result.stderr.strip()}"
    if not {"idle", "mix"} & set(result.stdout.split()):
        return f"no Slurm node can take jobs (node states: {result.stdout.split()})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = slurm_problem()
    if problem:
        pytest.skip(problem)


def jobs_named(name: str) -> dict[str, str]:
    """Job id -> state of the jobs with this name in squeue."""
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, timeout=10
    ).stdout
    return dict(line.split() for line in out.splitlines())


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
