"""Terminal progress of a campaign: a rich progress bar on a terminal, log lines otherwise.

Shows finished / requested, running, failed, best so far, elapsed and ETA. When output
is not a terminal (batch job logs, CI) every finished trial is one plain line.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.trial import TrialResult


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class Display:
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
            self.log(f"trial {number} failed ({kind}): {(error or '')[:200]}")
            return
        if self.live or self.quiet:
            return
        shown = ", ".join(_fmt(v) for v in values or [])
        where = f" on {result.worker}" if result and result.worker else ""
        took = f" in {result.duration:.1f}s" if result else ""
        self.log(f"trial {number} complete: {shown}{took}{where}")

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
