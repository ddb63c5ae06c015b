"""Terminal progress of a campaign: a rich progress bar on a terminal, log lines otherwise.

Shows finished / requested, running, failed, best so far, elapsed and ETA. When output
is not a terminal (batch job logs, CI) every finished trial is one plain line.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.execution.trial import TrialResult


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class Display:
    """The terminal listener of a campaign (``supervisor.study.events.CampaignListener``)."""

    def __init__(self, quiet: bool = False, force_plain: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and not force_plain and sys.stdout.isatty()
        self.failed = 0
        self.total = 0
        self._progress: Any = None
        self._task: Any = None
        self._console: Any = None
        self._t0 = time.monotonic()

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        self.total = total
        self._t0 = time.monotonic()
        if zombies:
            self.log(
                f"Resumed: closed {len(zombies)} trial(s) left running by a dead driver "
                f"({', '.join(map(str, zombies[:10]))}{'...' if len(zombies) > 10 else ''}); "
                "their parameters are queued again"
            )
        if done:
            self.log(f"Resuming: {done} of {total} trials already finished")
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]trials"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("running {task.fields[running]}  failed {task.fields[failed]}"),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._progress.add_task(
                "trials", total=total, completed=done, running=0, failed=0, best="-"
            )
            self._progress.start()

    def update(self, done: int, running: int, best: float | None) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=done, running=running, failed=self.failed, best=_fmt(best)
            )

    def trial_done(
        self,
        number: int,
        state: str,
        values: list[float] | None,
        result: TrialResult | None,
        error: str | None = None,
        kind: str | None = None,
    ) -> None:
        if state == "failed":
            self.failed += 1
            one_line = " ".join((error or "").split())  # a dead process's last output
            self.log(f"trial {number} failed ({kind}): {one_line[:200]}")
            return
        if self.live or self.quiet:
            return
        shown = ", ".join(_fmt(v) for v in values or [])
        where = f" on {result.worker}" if result and result.worker else ""
        took = f" in {result.duration:.1f}s" if result else ""
        self.log(f"trial {number} {state}: {shown}{took}{where}")

    def trial_pruned(self, number: int, epoch: int | None) -> None:
        if not self.live:
            self.log(f"trial {number} pruned after epoch {epoch}")

    def trial_duplicate(self, number: int, earlier: int) -> None:
        if not self.live:
            self.log(f"trial {number} duplicates trial {earlier}: not trained")

    def log(self, line: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where a terminal bar would not render)."""
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def make_display(plain: bool = False, quiet: bool = False) -> Display:
    """The listener for a campaign started here: nothing, log lines, a live notebook
    line in a Jupyter kernel, or a progress bar on a terminal."""
    if quiet:
        return Display(quiet=True)
    if not plain and in_notebook():
        return NotebookDisplay()
    return Display(force_plain=plain)


class NotebookDisplay(Display):
    """A campaign's progress in a notebook cell: one HTML line updated in place (finished
    of requested, running, failed, best, elapsed) and the log lines below it."""

    def __init__(self) -> None:
        super().__init__(force_plain=True)
        self._handle: Any = None
        self._best: float | None = None

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        from IPython.display import HTML, display

        super().start(total, done, zombies)
        self._handle = display(HTML(self._line(done, 0)), display_id=True)

    def update(self, done: int, running: int, best: float | None) -> None:
        from IPython.display import HTML

        self._best = best
        if self._handle is not None:
            self._handle.update(HTML(self._line(done, running)))

    def trial_done(
        self,
        number: int,
        state: str,
        values: list[float] | None,
        result: TrialResult | None,
        error: str | None = None,
        kind: str | None = None,
    ) -> None:
        if state == "failed":  # a failure is worth a line; completes show in the bar
            super().trial_done(number, state, values, result, error, kind)

    def trial_pruned(self, number: int, epoch: int | None) -> None:
        pass

    def _line(self, done: int, running: int) -> str:
        from html import escape

        total = max(self.total, 1)
        elapsed = time.monotonic() - self._t0
        text = (
            f"trials {done}/{self.total} · running {running} · failed {self.failed}"
            f" · best {_fmt(self._best)} · {elapsed:.0f} s"
        )
        return (
            f'<progress value="{done}" max="{total}" style="width:40%"></progress> '
            f"<code>{escape(text)}</code>"
        )
