"""User-facing errors: one line naming the file, the key path and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class UserError(ValueError):
    """Bad input from the user. The CLI prints ``str(err)`` alone and exits with code 2.
    A ``ValueError``: the Python API's caller catches a bad argument as Python's own."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """A signal (Ctrl-C, a notebook's interrupt button, SIGTERM, SIGUSR1) stopped a search
    or an ensemble after its running trials were recorded and queued again. A
    ``KeyboardInterrupt``, so that a script's loop or a notebook's "run all" stops there
    too; ``run`` is the campaign (``supervisor.search``), which the same call resumes."""

    def __init__(self, message: str, signal: str = "SIGINT", run: Any = None) -> None:
        super().__init__(message)
        self.signal, self.run = signal, run

    @property
    def exit_code(self) -> int:
        """What the command exits with: 128 + the signal's number, as a shell reports it."""
        import signal as signals

        return 128 + int(getattr(signals, self.signal, signals.SIGINT))


class SpaceError(UserError):
    """A problem in a search-space (or launcher) file, located as precisely as we can."""

    def __init__(
        self,
        file: str,
        key: str,
        message: str,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file, self.key, self.message = file, key, message
        self.line, self.column = line, column
        where = file if line is None else f"{file}:{line}:{column or 1}"
        self.located = f"{where}: {key}" if key else where  # the message's prefix
        super().__init__(f"{self.located}: {message}")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close candidate exists, else ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, which Python 3.10 lacks: the note goes into ``__notes__``
    directly (3.11's tracebacks show it; the messages that quote a note read it there)."""
    vars(exc)["__notes__"] = [*getattr(exc, "__notes__", []), note]
