"""What a running campaign tells the outside: the driver's events and who listens.

The driver calls a ``CampaignListener`` at each step of its loop and never looks at how
it is shown; the terminal progress display (``supervisor.commands.progress``) and the
notebook display are listeners, and ``Silent`` is the default of library use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from supervisor.execution.trial import TrialResult

# What the driver asks its cluster every turn of its loop, with where to say things: a
# line to stop the campaign with (no trial can run there), or None
# (``supervisor.clusters.submissions.Watch``).
ClusterWatch = Callable[[Callable[[str], None]], str | None]


class CampaignListener(Protocol):
    """Called by the driver from its own thread, in this order: ``start`` once, then
    ``update`` every loop turn and the ``trial_*`` events as results arrive, ``log`` for
    lines worth showing, and ``stop`` once at the end."""

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        """The campaign begins: ``done`` of ``total`` trials finished already, and the
        trials in ``zombies`` (left running by a dead driver) were closed and queued again."""

    def update(self, done: int, running: int, best: float | None) -> None:
        """Counts after a loop turn; ``best`` is the best first objective so far."""

    def trial_done(
        self,
        number: int,
        state: str,
        values: list[float] | None,
        result: TrialResult | None,
        error: str | None = None,
        kind: str | None = None,
    ) -> None:
        """A trial finished: "complete" with its values ("complete, breaking the
        constraints" when it breaks the space file's), or "failed" with its error and
        failure kind."""

    def trial_pruned(self, number: int, epoch: int | None) -> None:
        """The pruner stopped a trial after ``epoch``."""

    def trial_duplicate(self, number: int, earlier: int) -> None:
        """A proposal repeated finished trial ``earlier``; its values were reused."""

    def log(self, line: str) -> None:
        """A line for the user (resumes, interrupts, cluster changes)."""

    def stop(self) -> None:
        """The campaign's loop ended."""


class Silent:
    """The listener that shows nothing."""

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        pass

    def update(self, done: int, running: int, best: float | None) -> None:
        pass

    def trial_done(
        self,
        number: int,
        state: str,
        values: list[float] | None,
        result: TrialResult | None,
        error: str | None = None,
        kind: str | None = None,
    ) -> None:
        pass

    def trial_pruned(self, number: int, epoch: int | None) -> None:
        pass

    def trial_duplicate(self, number: int, earlier: int) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    def stop(self) -> None:
        pass
