"""Which trials of a study finished since the last look, without re-checking every one.

A finished trial never changes, so what keeps a view of a study up to date (the driver's
budget and duplicate index, the sampler's bounded history and search space) only needs
the trials that finished since it last looked. Re-checking every unfinished trial costs
O(in flight) per look: with 10,000 workers, 10,000 state checks per proposal, several
times over. The campaign journal keeps a log of the numbers of trials as they finish
(``CampaignJournalStorage.finished_since``); with it a look costs O(trials finished
since). Other storages (Optuna's in-memory, RDB) have no such log: there each look
re-checks the unfinished trials, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

Feed = Callable[[int, int], tuple[list[int], int]]


def _feed(study: Any) -> tuple[Feed, int] | None:
    """The storage's log of finished trials and the study's id there, if it keeps one."""
    try:
        storage = internals.study_storage(study)
        feed = getattr(storage, "finished_since", None)
        return None if feed is None else (feed, internals.study_id(study))
    except AttributeError:  # not a study of a storage (e.g. a list of trials in a test)
        return None


class Unfinished:
    """The unfinished trials of one study as of the last look (``open``)."""

    def __init__(self) -> None:
        self.seen = 0  # trials looked at so far (numbers 0 .. seen - 1)
        self.open: set[int] = set()  # numbers of those not finished at the last look
        self._cursor = 0  # position in the storage's log of finished trials
        # Numbers the log named before the trials handed in showed them finished (the log
        # may be read after the list was): checked again at the next look.
        self._again: set[int] = set()

    def finished(self, trials: list[FrozenTrial], study: optuna.Study | None) -> list[int]:
        """The numbers of ``trials`` (the study's trials in number order) that finished
        since the last look, ascending; they leave ``open``. Without ``study`` (or with a
        storage that keeps no log) every open trial is checked."""
        self.open.update(range(self.seen, len(trials)))
        self.seen = len(trials)
        feed = None if study is None else _feed(study)
        if feed is None:
            candidates: set[int] = self.open
        else:
            read, study_id = feed
            numbers, self._cursor = read(study_id, self._cursor)
            candidates = self._again.union(numbers)
        done = sorted(n for n in candidates if n in self.open and trials[n].state.is_finished())
        if feed is not None:  # named, but not (yet) finished in this list: look again
            self._again = {n for n in candidates if n >= self.seen or n in self.open}
            self._again.difference_update(done)
        self.open.difference_update(done)
        return done
