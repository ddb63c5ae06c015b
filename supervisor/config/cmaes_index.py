"""CMA-ES at a cost per proposal that does not grow with the study.

Optuna's ``CmaEsSampler`` reads the whole study on every proposal: it lists every
complete trial, scans the list backwards for the newest one that carries the optimizer's
state, and scans it again for the trials of the current generation, and its search space
re-reads every trial since the oldest unfinished one. That is Python over every trial per
proposal: tens of milliseconds at 10,000 trials, seconds' worth of a driver at 100,000.

A finished trial never changes, so ``CmaIndex`` folds in only the trials that finished
since the last proposal (``supervisor.unfinished``: O(those) on the campaign journal)
and keeps what those scans look for: the complete trials of each generation in number
order, and the newest complete trial that holds the optimizer. Optuna's own code does
the rest with those, so the proposals are the ones Optuna's sampler makes
(``tests/config/test_cmaes_index.py``). Where the study's list is not one study's trials
by number (a view), Optuna's scans run as before.
"""

from __future__ import annotations

import bisect
import copy
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from supervisor.config.history import incremental_space
from supervisor.unfinished import Unfinished

if TYPE_CHECKING:
    from optuna import Study


class _Index:
    """What CMA-ES reads of one study's complete trials (and, with
    ``consider_pruned_trials``, its pruned ones valued at their last report)."""

    def __init__(self, study_name: str, generation_key: str, optimizer_key: str) -> None:
        self.study_name = study_name
        self.generation_key, self.optimizer_key = generation_key, optimizer_key
        self.unfinished = Unfinished()
        self.complete: list[FrozenTrial] = []  # in the order they were folded in
        self.generations: dict[int, list[tuple[int, FrozenTrial]]] = {}  # by number
        self.holder: FrozenTrial | None = None  # the newest that holds the optimizer

    def update(self, trials: list[FrozenTrial], study: Study, pruned_too: bool) -> None:
        for number in self.unfinished.finished(trials, study):
            trial = trials[number]
            if trial.state == TrialState.PRUNED and pruned_too and trial.intermediate_values:
                _, value = max(trial.intermediate_values.items())
                if value is None:
                    continue
                trial = copy.deepcopy(trial)  # as Optuna does: valued for sampling only
                trial.value = value
            elif trial.state != TrialState.COMPLETE:
                continue
            self.complete.append(trial)
            generation = trial.system_attrs.get(self.generation_key, -1)
            bisect.insort(self.generations.setdefault(generation, []), (number, trial))
            holds = any(key.startswith(self.optimizer_key) for key in trial.system_attrs)
            if holds and (self.holder is None or number > self.holder.number):
                self.holder = trial


class CmaIndex(BaseSampler):
    """Placed before ``CmaEsSampler`` (``class S(CmaIndex, CmaEsSampler)``): its scans of
    the study answered from an index kept up to date incrementally."""

    _index: _Index | None = None

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        incremental_space(self)
        return super().infer_relative_search_space(study, trial)  # type: ignore[safe-super]

    def _get_trials(self, study: Study) -> list[FrozenTrial]:
        trials = study._get_trials(deepcopy=False, use_cache=True)
        if trials and trials[-1].number != len(trials) - 1:  # not one study's list
            self._index = None
            return super()._get_trials(study)  # type: ignore[misc]
        index = self._index
        if index is None or index.study_name != study.study_name:
            keys = (self._attr_key_generation, self._attr_key_optimizer)  # type: ignore[attr-defined]
            index = self._index = _Index(study.study_name, *keys)
        index.update(trials, study, self._consider_pruned_trials)  # type: ignore[attr-defined]
        return index.complete

    def _restore_optimizer(self, completed_trials: list[FrozenTrial]) -> Any:
        index = self._index
        if index is None or completed_trials is not index.complete:
            return super()._restore_optimizer(completed_trials)  # type: ignore[misc]
        if index.holder is None:
            return None
        return super()._restore_optimizer([index.holder])  # type: ignore[misc]

    def _get_solution_trials(
        self, trials: list[FrozenTrial], generation: int
    ) -> list[FrozenTrial]:
        index = self._index
        if index is None or trials is not index.complete:
            return super()._get_solution_trials(trials, generation)  # type: ignore[misc]
        return [trial for _, trial in index.generations.get(generation, [])]
