"""Importing dask-jobqueue replaces Ctrl-C's handler with ``sys.exit()``; the supervisor
puts Python's back, so Ctrl-C stays a KeyboardInterrupt (an "interrupted", exit 130)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


@pytest.mark.parametrize(
    "setup",
    [
        # A batch profile loaded (it reads dask-jobqueue's defaults), as search does.
        "from supervisor.clusters import profile; profile.load('slurm')",
        # dask-jobqueue imported before by the user's own code, then the supervisor's.
        "import dask_jobqueue; from supervisor.clusters import profile; profile.load('pbs')",
    ],
)
def test_a_batch_profile_leaves_ctrl_c_a_keyboard_interrupt(setup: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", f"{setup}; {CHECK}"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_ctrl_c_after_a_batch_profile_is_an_interrupt_not_a_silent_exit() -> None:
    code = (
        "import os, signal, time\n"
        "from supervisor.clusters import profile\n"
        "profile.load('slurm')\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(5)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == -2 and "KeyboardInterrupt" in out.stderr  # not exit 0, silent
