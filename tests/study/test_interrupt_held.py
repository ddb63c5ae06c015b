"""A Ctrl-C while a cluster starts: held until it is whole, and then the caller's."""

from __future__ import annotations

import signal

import pytest

from supervisor.study.signals import interrupt_held


def test_a_ctrl_c_held_while_a_cluster_starts_is_raised_after_it() -> None:
    with pytest.raises(KeyboardInterrupt), interrupt_held():
        signal.raise_signal(signal.SIGINT)
        started = True  # the block went on: the interrupt waited
    assert started


def test_a_ctrl_c_that_also_failed_the_start_is_an_interrupt_not_the_failure() -> None:
    """A terminal's Ctrl-C reaches every process of its group: the nannies of the starting
    workers die of it and the cluster's start fails. The user sees an interrupt (exit 130),
    not a "Nanny failed to start" traceback."""
    with pytest.raises(KeyboardInterrupt) as caught, interrupt_held():
        signal.raise_signal(signal.SIGINT)
        raise RuntimeError("Nanny failed to start.")
    assert isinstance(caught.value.__context__, RuntimeError)


def test_a_start_that_fails_without_an_interrupt_says_why() -> None:
    with pytest.raises(RuntimeError, match=r"Nanny failed"), interrupt_held():
        raise RuntimeError("Nanny failed to start.")
