"""The study as one driver sees it: budget counts and the duplicate index of every driver.

Several drivers may share a study, so what counts is the storage, not one driver's memory:
the budget is the study's finished trials, and a configuration any driver completed is
not trained again. Reading all trials each turn would cost O(trials); a finished trial
never changes, so each look reads only the trials that finished since the last one
(``supervisor.unfinished``: the campaign journal logs them; other storages re-check the
unfinished ones, O(in flight)), and the other drivers' unfinished trials for their
parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.study import attrs
from supervisor.unfinished import Unfinished

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

ParamKey = tuple[tuple[str, str], ...]


def param_key(params: dict[str, Any]) -> ParamKey:
    """Identity of a configuration: equal parameters, equal key (repr keeps 1 and 1.0 and
    True apart, as the sampler's distributions do)."""
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


class StudyIndex:
    def __init__(self, driver_id: str, twins: bool = True) -> None:
        self.driver_id = driver_id
        self.twins = twins  # whether duplicates are looked for at all
        self.trials: list[FrozenTrial] = []  # as of the last look, in trial-number order
        self.unfinished = Unfinished()
        self.open = self.unfinished.open  # numbers of those not finished at the last look
        # Unfinished trials not known to be this driver's (by their driver attribute, which
        # a driver writes with the parameters) and those WAITING at the last look: few.
        self.foreign: set[int] = set()
        self.queued: set[int] = set()
        self.finished = 0  # finished ones that count toward the budget
        # Every driver's completed configurations: key -> (trial, values).
        self.completed: dict[ParamKey, tuple[int, list[float]]] = {}
        # Configurations other drivers are training now: key -> trial number.
        self.elsewhere: dict[ParamKey, int] = {}
        self._keys: dict[int, tuple[int, ParamKey]] = {}  # open trial -> (n params, key)

    def update(
        self, trials: list[FrozenTrial], study: optuna.Study | None = None
    ) -> list[FrozenTrial]:
        """Take a new look (``study.get_trials()``, and the study they are of); returns the
        trials that finished since the last one, in number order."""
        from optuna.trial import TrialState

        self.trials = trials
        new = range(self.unfinished.seen, len(trials))
        done = [trials[n] for n in self.unfinished.finished(trials, study)]
        if self.twins:
            self.foreign.update(new)
        self.queued.update(n for n in new if trials[n].state == TrialState.WAITING)
        for t in done:
            self._keys.pop(t.number, None)
            if attrs.counts_toward_budget(t):
                self.finished += 1
            if self.twins and t.state == TrialState.COMPLETE and t.values is not None:
                self.completed.setdefault(param_key(t.params), (t.number, list(t.values)))
        self.foreign.difference_update(t.number for t in done)
        self.queued = {n for n in self.queued & self.open if trials[n].state == TrialState.WAITING}
        if self.twins:
            self.elsewhere = {}
            for n in sorted(self.foreign):
                t = trials[n]
                if t.user_attrs.get(attrs.DRIVER) == self.driver_id:
                    self.foreign.discard(n)  # this driver's own: it knows them better
                elif t.state == TrialState.RUNNING and t.params:
                    self.elsewhere.setdefault(self._key(t), n)
        return done

    def _key(self, t: FrozenTrial) -> ParamKey:
        """A trial's key, computed once (again only while its parameters are still being
        written, on storages that store them one by one)."""
        cached = self._keys.get(t.number)
        if cached is None or cached[0] != len(t.params):
            cached = (len(t.params), param_key(t.params))
            self._keys[t.number] = cached
        return cached[1]

    def running(self) -> int:
        """RUNNING trials of every driver on this study, as of the last look."""
        return len(self.open) - len(self.queued)

    def might_be_surplus(self, number: int, budget: int) -> bool:
        """False when the budget is not full even with every other open trial counted and
        every trial not looked at yet counted as open: no need to look (every trial but a
        campaign's last ones)."""
        unseen = max(0, number + 1 - self.unfinished.seen)
        return self.finished + len(self.open) + unseen - 1 >= budget

    def surplus(self, number: int, budget: int) -> bool:
        """Whether the trials before ``number`` already fill the budget (after a fresh
        look): another driver asked between this driver's count and its ask. Of two such
        asks the later trial number yields, so drivers sharing a study finish exactly the
        budget."""
        from optuna.trial import TrialState

        earlier = sum(
            1 for n in self.open if n < number and self.trials[n].state == TrialState.RUNNING
        )
        return self.finished + earlier >= budget
