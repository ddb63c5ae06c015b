"""Signals that stop a campaign gracefully: Ctrl-C, and what batch systems send.

SIGINT (Ctrl-C), SIGTERM (Slurm at walltime, ``scancel``, ``scontrol requeue``, a plain
``kill``) and SIGUSR1 (the warning a job asks for with ``--signal=B:USR1@120``) all stop
the driver the same way: no new trials, running ones cancelled, recorded as interrupted
and queued again, a summary printed. The exit code says which signal it was, as a shell
reports a process killed by it (128 + the signal number): 130, 143 and 138 (SIGUSR1 on
Linux). A second Ctrl-C aborts at once; a repeated SIGTERM or SIGUSR1 changes nothing
(batch systems may send them to every process of a job, more than once).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOPPING = ("SIGINT", "SIGTERM", "SIGUSR1")
REPEATED = ("SIGTERM", "SIGUSR1")  # sent by batch systems, to every process, more than once
REPEATED_WITHIN = 120.0  # seconds after a stop that they are ignored (Slurm's KillWait: 30)
BATCH_JOB_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")  # in a batch job


def exit_code(name: str) -> int:
    """What a shell reports for a process the signal ``name`` stopped."""
    return 128 + int(getattr(signal, name))


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, the first stopping signal calls ``on_stop(name)``; the handlers
    in force before are restored after (in a batch job stopped by its SIGTERM or SIGUSR1,
    those two stay ignored ``REPEATED_WITHIN`` s first). Outside the main thread (where
    Python cannot handle signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if name == "SIGINT" and name in received:
            raise KeyboardInterrupt  # the user insists
        received.append(name)
        if len(received) == 1:
            on_stop(name)

    previous = {name: signal.signal(getattr(signal, name), handler) for name in STOPPING}
    try:
        yield
    finally:
        stopping_since = time.monotonic()
        in_a_batch_job = any(os.environ.get(var) for var in BATCH_JOB_VARS)
        for name, old in previous.items():
            if received and in_a_batch_job and name in REPEATED:  # it may come again
                signal.signal(getattr(signal, name), _ignored_for_a_while(old, stopping_since))
            else:
                signal.signal(getattr(signal, name), old)


def _ignored_for_a_while(old: Any, since: float) -> Callable[[int, Any], None]:
    """A handler that ignores its signal for ``REPEATED_WITHIN`` s after the driver stopped
    (its summary and the cluster's close come after the block: a SIGTERM that Slurm sent
    at the walltime, or a requeue after the warning, killed it there, its worker jobs
    left running), then restores ``old`` and lets the signal act as before."""

    def handler(signum: int, frame: Any) -> None:
        if time.monotonic() - since < REPEATED_WITHIN:
            return
        signal.signal(signum, signal.SIG_DFL if old is None else old)
        os.kill(os.getpid(), signum)

    return handler


@contextmanager
def interrupt_held() -> Iterator[None]:
    """Within the block a first Ctrl-C (SIGINT) waits, and reaches the handler in force
    before when the block ends: what the block starts (a cluster's scheduler and workers)
    is whole then, and the caller's cleanup closes it. Interrupted half-way, a cluster's
    constructor leaves its scheduler process to outlive the call (a notebook's kernel
    keeps it). A second Ctrl-C is raised at once. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt  # the user insists
        received.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        # To the caller's handler (KeyboardInterrupt), also when the block failed: a
        # terminal's Ctrl-C reaches the starting workers too, whose nannies then fail.
        if received:
            signal.raise_signal(signal.SIGINT)
