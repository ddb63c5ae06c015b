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

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOPPING = ("SIGINT", "SIGTERM", "SIGUSR1")


def exit_code(name: str) -> int:
    """What a shell reports for a process the signal ``name`` stopped."""
    return 128 + int(getattr(signal, name))


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, the first stopping signal calls ``on_stop(name)``; the handlers
    in force before are restored after. Outside the main thread (where Python cannot
    handle signals) it does nothing."""
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
        for name, old in previous.items():
            signal.signal(getattr(signal, name), old)


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
    if received:
        signal.raise_signal(signal.SIGINT)  # to the caller's handler: KeyboardInterrupt
