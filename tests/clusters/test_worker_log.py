"""A local campaign's workers write what they and their trials print to the run's
``workers.log``, not to the terminal the campaign's own lines and progress bar use."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

TOY = "tests.toy_benchmark:ToyBenchmark"
ROOT = Path(__file__).resolve().parents[2]


def test_a_crashing_trial_s_stack_goes_to_the_workers_log_not_the_terminal(
    tmp_path: Path,
) -> None:
    """A segfault in a trial (native code): the campaign says it in one line; the
    dozen lines of Python stack faulthandler prints came to the terminal too, through
    the driver's progress bar, for each of its 3 attempts."""
    (tmp_path / "seg.yaml").write_text(
        f'benchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\n  mode: [segfault]\n"
        "budget: {trials: 1, epochs: 1, fail_fast: 0}\nsampler: random\nseed: 3\n"
    )
    flags = ["--workers", "1", "--plain", "--no-report", "--dashboard", "127.0.0.1:0"]
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "search", "seg.yaml", *flags],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    shown = done.stdout + done.stderr
    assert "failed (model): its worker died on all 3 attempts" in shown, shown
    assert "Fatal Python error" not in done.stderr and " in string_at" not in shown, shown
    log = tmp_path / "runs" / "seg" / "workers.log"
    assert f"Workers' output: {log}\n" in done.stdout
    text = log.read_text()
    assert text.count("native kernel: bad descriptor 0x0") == 3  # each attempt
    assert text.count("Fatal Python error: Segmentation fault") == 3
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
