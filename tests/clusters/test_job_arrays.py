"""A profile that makes its worker jobs arrays: refused, not a campaign with one worker.

On the test Slurm, `job_extra_directives: ['--array=0-2']` gave three tasks each starting
the workers of one Dask job under the same names: the scheduler kept one worker, the
other tasks held their nodes (one ran on, idle) and the user counted three.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOY = "tests.toy_benchmark:ToyBenchmark"


@pytest.mark.parametrize(
    ("kind", "directive"),
    [
        ("slurm", "--array=0-2"),
        ("slurm", "--array 0-2"),
        ("slurm", "-a 1-4%2"),
        ("pbs", "-J 1-4"),
        ("sge", "-t 1-4"),
        ("lsf", '-J "w[1-4]"'),
    ],
)
def test_a_job_array_of_workers_is_refused_before_anything_runs(
    tmp_path: Path, kind: str, directive: str
) -> None:
    (tmp_path / "toy.yaml").write_text(
        f'study: arr\nbenchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 2, epochs: 1}\n"
    )
    walltime = "'01:00'" if kind == "lsf" else "'01:00:00'"
    (tmp_path / "p.yaml").write_text(
        f"kind: {kind}\ncores: 1\nmemory: 1GiB\nwalltime: {walltime}\n"
        f"job_extra_directives: [{directive!r}]\n"
    )
    command = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--dry-run"]
    done = subprocess.run(
        [*command, "--launcher", "p.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: p.yaml: job_extra_directives: {directive!r}: a job array's tasks would each"
        " start the same Dask workers and all but one be turned away; ask for several jobs"
        " with max_jobs (and min_jobs) instead"
    )
    assert not (tmp_path / "runs").exists()


def test_directives_that_only_look_like_an_array_flag_pass(tmp_path: Path) -> None:
    from supervisor.clusters.script_values import array_directive

    assert array_directive("slurm", ["--account=a", "-A proj", "--time=1:00:00"]) is None
    assert array_directive("pbs", ["-j oe", "-l select=1"]) is None
    assert array_directive("lsf", ["-J workers"]) is None
    assert array_directive("slurm", ["-a0-3"]) == "-a0-3"
