"""Terminal progress of a campaign: a rich progress bar on a terminal, log lines otherwise.

Shows finished / requested, running, failed, best so far, elapsed and ETA (the
timeout's, "(timeout)", where ``budget.timeout`` stops new trials first). When output
is not a terminal (batch job logs, CI) every finished trial is one plain line, and the
counts and ETA are a line of their own every ``PLAIN_EVERY`` seconds while trials finish.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor.report.fmt import seconds as duration_text

if TYPE_CHECKING:
    from rich.console import Console

    from supervisor.execution.trial import TrialResult

RECENT = 20  # finished trials that set the pace, as for `supervisor status`
BAR = 40  # columns of the progress bar, at most
PLAIN_EVERY = 600.0  # seconds between the progress lines of a log (not a terminal)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class Pace:
    """The ETA of this session at its recent pace: the trials left times the time the
    last ``RECENT`` finished trials took (since the finish before them, else since the
    start). Rich's own ETA averages the finishes of its last 30 s: trials minutes apart
    left it at -:--:-- for good, and two finishing together made it seconds. A stall
    makes this one grow, as the time since the window began grows."""

    def __init__(self, done: int, now: float) -> None:
        # (time, finished trials) at each finish; each adds one at least, so the oldest
        # of RECENT + 1 is RECENT trials back at least.
        self.samples: deque[tuple[float, int]] = deque([(now, done)], maxlen=RECENT + 1)

    @property
    def done(self) -> int:
        return self.samples[-1][1]

    def seen(self, done: int, now: float) -> None:
        if done > self.done:
            self.samples.append((now, done))

    def eta(self, total: int, now: float) -> float | None:
        """Seconds until ``total`` trials are finished, None before a finish."""
        since, before = next(
            (s for s in reversed(self.samples) if s[1] <= self.done - RECENT), self.samples[0]
        )
        if total <= self.done or self.done == before:
            return None
        return (total - self.done) * max(0.0, now - since) / (self.done - before)


class Display:
    """The terminal listener of a campaign (``supervisor.study.events.CampaignListener``)."""

    def __init__(
        self,
        quiet: bool = False,
        force_plain: bool = False,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float | None = None,
    ) -> None:
        self.quiet = quiet
        self.timeout = timeout  # budget.timeout: no new trials that long after start
        tty = console.is_terminal if console is not None else sys.stdout.isatty()
        self.live = not quiet and not force_plain and tty
        self.failed = 0
        self.total = 0
        self._progress: Any = None
        self._task: Any = None
        self._bar: Any = None
        self._console = console  # None: rich's, on standard output
        self._clock = clock
        self._t0 = clock()
        self.pace = Pace(0, self._t0)
        self._said, self._said_done = self._t0, 0  # the last progress line of a log
        self._ends: float | None = None  # the clock's time of the timeout

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        self.total = total
        self._t0 = self._clock()
        self.pace = Pace(done, self._t0)
        self._said, self._said_done = self._t0, done
        self._ends = self._t0 + self.timeout if self.timeout else None
        if zombies:
            self.log(
                f"Resumed: closed {len(zombies)} trial(s) left running by a dead driver "
                f"({', '.join(map(str, zombies[:10]))}{'...' if len(zombies) > 10 else ''}); "
                "their parameters are queued again"
            )
        if done >= total:  # said "7 of 5 trials already finished", then stopped
            self.log(
                f"Resuming: {done} trials finished already, the budget is {total}: none to"
                " run (raise budget.trials or --trials to search on)"
            )
        elif done:
            self.log(f"Resuming: {done} of {total} trials finished already, {total - done} to run")
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = BarColumn(bar_width=BAR)
            self._progress = Progress(
                TextColumn("[bold]trials"),
                self._bar,
                TextColumn("{task.fields[line]}"),
                transient=False,
                console=self._console,
                get_time=self._clock,
            )
            self._task = self._progress.add_task("trials", total=total, line="")
            self._show(done, 0, None)
            self._progress.start()

    def update(self, done: int, running: int, best: float | None) -> None:
        now = self._clock()
        self.pace.seen(done, now)
        if self._progress is not None:
            self._show(done, running, best)
        elif not self.quiet and now - self._said >= PLAIN_EVERY and done > self._said_done:
            # A batch job's log: the trial lines alone never said how far the campaign
            # was nor when it would end; a few lines an hour, none while nothing finishes.
            self._said, self._said_done = now, done
            self.log(f"progress: {self._text(done, running, best)}")

    def _show(self, done: int, running: int, best: float | None) -> None:
        line = self._text(done, running, best)
        # The bar gets what the text leaves, as the terminal is now: in columns of their
        # own, rich cut the count short on an 80-column terminal (1300/50…).
        width = self._progress.console.width - len(line) - len("trials ") - 2
        self._bar.bar_width = min(BAR, width) if width >= 10 else 0  # no stub of a bar
        self._progress.update(self._task, completed=done, line=line)

    def _text(self, done: int, running: int, best: float | None) -> str:
        now = self._clock()
        elapsed = dt.timedelta(seconds=int(now - self._t0))
        return (
            f"{done}/{self.total} running {running}  failed {self.failed}  best {_fmt(best)}"
            f"  {elapsed}  ETA {self.eta_text(now)}"
        )

    def eta_text(self, now: float) -> str:
        """The ETA at the recent pace, or the timeout's where it comes first: a campaign
        its timeout ends in 20 min showed an ETA of 5 h."""
        eta = self.pace.eta(self.total, now)
        if self._ends is not None and eta is not None and self._ends - now < eta:
            return f"{duration_text(max(0.0, self._ends - now))} (timeout)"
        return "-" if eta is None else duration_text(eta)

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
        took = f" in {duration_text(result.duration)}" if result else ""  # not 18000.0s
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


def make_display(
    plain: bool = False, quiet: bool = False, timeout: float | None = None
) -> Display:
    """The listener for a campaign started here: nothing, log lines, a live notebook
    line in a Jupyter kernel, or a progress bar on a terminal (``timeout``: the
    campaign's ``budget.timeout``, which its ETA shows where it comes first)."""
    if quiet:
        return Display(quiet=True)
    if not plain and in_notebook():
        return NotebookDisplay(timeout)
    return Display(force_plain=plain, timeout=timeout)


class NotebookDisplay(Display):
    """A campaign's progress in a notebook cell: one HTML line updated in place (finished
    of requested, running, failed, best, elapsed) and the log lines below it."""

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(force_plain=True, timeout=timeout)
        self._handle: Any = None
        self._best: float | None = None

    def start(self, total: int, done: int, zombies: list[int]) -> None:
        from IPython.display import HTML, display

        super().start(total, done, zombies)
        self._handle = display(HTML(self._line(done, 0)), display_id=True)

    def update(self, done: int, running: int, best: float | None) -> None:
        from IPython.display import HTML

        self._best = best
        self.pace.seen(done, self._clock())
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
        now = self._clock()
        text = (
            f"trials {done}/{self.total} · running {running} · failed {self.failed}"
            f" · best {_fmt(self._best)} · {duration_text(now - self._t0)}"
            f" · ETA {self.eta_text(now)}"
        )
        return (
            f'<progress value="{done}" max="{total}" style="width:40%"></progress> '
            f"<code>{escape(text)}</code>"
        )
