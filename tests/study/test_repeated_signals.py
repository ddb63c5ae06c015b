"""A batch system's second signal, while the driver shuts down after the first: ignored.

After the walltime warning (SIGUSR1) the driver stops; Slurm's SIGTERM (a requeue or
scancel in the grace, or the walltime itself) then came while it recorded its summary and
closed its cluster, after its signal handlers were gone: it died there, with no summary,
leaked semaphores, and worker jobs left to their death timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TOY = "tests.toy_benchmark:ToyBenchmark"


def test_a_sigterm_after_the_walltime_warning_lets_the_driver_finish_its_stop(
    tmp_path: Path,
) -> None:
    (tmp_path / "toy.yaml").write_text(
        f'study: sig\nbenchmark: {{name: "{TOY}", options: {{delay: 0.3}}}}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 400, epochs: 1}\n"
    )
    command = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--plain"]
    command += ["--no-report", "--dashboard", "127.0.0.1:0"]
    log = tmp_path / "driver.log"
    with log.open("w") as out_file:
        env = {**os.environ, "PBS_JOBID": "77.server"}  # in a batch job (not Slurm's:
        # its SLURM_JOB_ID would have the driver ask this host's scontrol about it)
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=out_file, stderr=out_file, env=env)
    try:
        deadline = time.monotonic() + 90
        while "complete:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # until trials run
        os.kill(driver.pid, signal.SIGUSR1)
        while "SIGUSR1: stopping" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        while driver.poll() is None and time.monotonic() < deadline:
            if "Stopped: SIGUSR1" in log.read_text():
                break  # its cluster closed, its summary said: the stop is done
            os.kill(driver.pid, signal.SIGTERM)  # again and again, as the stop goes on
            time.sleep(0.2)
        driver.wait(timeout=60)
    finally:
        driver.kill()
        driver.wait()
    out = log.read_text()
    assert "Stopped: SIGUSR1 received" in out, out
    assert "Run the same command again to continue the search." in out
