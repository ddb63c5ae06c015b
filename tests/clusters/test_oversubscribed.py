"""A local cluster packed beyond the machine's cores says so on its cluster line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from supervisor.clusters.local import usable_cores

TOY = "tests.toy_benchmark:ToyBenchmark"
ROOT = Path(__file__).resolve().parents[2]


def search(tmp_path: Path, *flags: str) -> str:
    space = tmp_path / "toy.yaml"
    space.write_text(
        f'benchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 1, epochs: 1}\nsampler: random\nseed: 3\n"
    )
    env = {**os.environ, "SUPERVISOR_CALIBRATION_DIR": str(tmp_path / "cal")}
    command = [sys.executable, "-m", "supervisor.cli", "search", str(space), *flags]
    command += ["--plain", "--no-report", "--dashboard", "127.0.0.1:0"]
    proc = subprocess.run(
        [*command, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return next(line for line in proc.stdout.splitlines() if line.startswith("local cluster"))


def test_more_threads_than_cores_are_named_on_the_cluster_line(tmp_path: Path) -> None:
    """--workers 2 --threads N on N cores ran 2N threads on N cores without a word,
    where the README says packed trials do not oversubscribe the node."""
    cores = usable_cores()
    line = search(tmp_path, "--workers", "2", "--threads", str(cores))
    assert line.endswith(
        f"; oversubscribed: {2 * cores} threads on {cores} usable cores, so trials slow"
        " each other down"
    )
    assert "oversubscribed" not in search(tmp_path, "--workers", "1", "--study", "fits")
