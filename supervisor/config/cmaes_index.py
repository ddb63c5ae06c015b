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

Optuna's CMA-ES leaves failed trials out: a generation is told only once ``popsize`` of its
trials complete, so where most of the current distribution fails (a learning rate range
that diverges) the distribution never moves and nearly every trial fails (143 of 150 on
``perf.quality``'s ``fail-hartmann6``). With ``failures_as_worst`` (``failures: avoid``,
the default) a trial failed by the model counts in its generation, ranked below every
trial of it that completed: SMAC's and DeepHyper's imputation of failures as the worst
value seen. CMA-ES ranks, so only the order matters.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from supervisor.config.history import failed_by_model, incremental_space
from supervisor.unfinished import Unfinished

if TYPE_CHECKING:
    from optuna import Study


RECENT = 300  # the complete trials a failed one is measured against: the newest ones
WARM_START = "warm_start"  # = supervisor.study.attrs.WARM_START (config sits below study)
WS_MIN = 10  # WS-CMA-ES estimates its start from the best 10 % of them: one at least


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

    def update(
        self, trials: list[FrozenTrial], study: Study, pruned_too: bool, failed_too: bool
    ) -> None:
        for number in self.unfinished.finished(trials, study):
            trial = trials[number]
            if failed_too and failed_by_model(trial):
                pass  # valued when its generation is told (``valued``)
            elif trial.state == TrialState.PRUNED and pruned_too and trial.intermediate_values:
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


# Per (trial number, parameter names): its ``unit`` parameters ([] where it has no value or
# lacks one of them); at (-1, names): the numbers of the last trials and their array.
Units = dict[tuple[int, tuple[str, ...]], Any]


def unit(trial: FrozenTrial, names: Sequence[str]) -> list[float]:
    """``trial``'s parameters ``names`` in [0, 1] (log ranges on the log scale; a choice:
    its index over the number of choices)."""
    out = []
    for name in names:
        dist, value = trial.distributions[name], trial.params[name]
        if isinstance(dist, CategoricalDistribution):
            out.append(dist.to_internal_repr(value) / max(1, len(dist.choices) - 1))
            continue
        assert isinstance(dist, FloatDistribution | IntDistribution)
        low, high, x = float(dist.low), float(dist.high), float(value)
        if dist.log:
            low, high, x = math.log(low), math.log(high), math.log(x)
        out.append((x - low) / (high - low) if high > low else 0.0)
    return out


def _points(trials: Sequence[FrozenTrial], names: tuple[str, ...], units: Units) -> Any:
    """The ``unit`` parameters of ``trials`` that have a value and ``names``, as an array;
    ``units`` keeps each trial's, and the last array (keyed by the trials' numbers)."""
    numbers = tuple(t.number for t in trials)
    last = units.get((-1, names))
    if last is not None and last[0] == numbers:
        return last[1]
    rows = []
    for t in trials:
        row = units.get((t.number, names))
        if row is None:
            usable = t.value is not None and all(name in t.params for name in names)
            row = units[t.number, names] = unit(t, names) if usable else []
        if row:
            rows.append(row)
    points = np.array(rows)
    if len(units) > 2 * len(trials) + 2:  # forget trials that left the window
        keep = set(numbers)
        for key in [key for key in units if key[0] >= 0 and key[0] not in keep]:
            del units[key]
    units[-1, names] = (numbers, points)
    return points


def valued(
    trials: list[FrozenTrial],
    minimize: bool,
    working: Sequence[FrozenTrial] = (),
    units: Units | None = None,
) -> list[FrozenTrial]:
    """One generation's trials, each failed one (no value) valued worse than every other,
    and the failed ones among themselves by their distance to the nearest of ``working``
    (trials that completed): Deb's feasibility rules, with that distance standing in for
    the size of the violation, so a generation that fails whole still tells CMA-ES which
    way training works. All failed ones alike where nothing completed. ``units``: each
    working trial's ``unit`` parameters, kept between calls (the generation's trials are
    valued again at every proposal until it is told)."""
    values = [t.value for t in trials if t.value is not None]
    if len(values) == len(trials):
        return trials
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    margin = high - low + 1.0
    failed = [t for t in trials if t.value is None]
    names = tuple(sorted(set.intersection(*(set(t.distributions) for t in failed))))
    points = _points(working, names, {} if units is None else units)
    if len(points) and names:
        gaps = [float(np.min(np.linalg.norm(points - unit(t, names), axis=1))) for t in failed]
    else:
        gaps = [0.0] * len(failed)
    gap_of = iter(gaps)  # in the order of ``failed``
    out = []
    for trial in trials:
        if trial.value is None:
            worst = margin * (1.0 + next(gap_of))
            trial = copy.copy(trial)  # valued for sampling only; its dicts are not changed
            trial.value = high + worst if minimize else low - worst
        out.append(trial)
    return out


class CmaIndex(BaseSampler):
    """Placed before ``CmaEsSampler`` (``class S(CmaIndex, CmaEsSampler)``): its scans of
    the study answered from an index kept up to date incrementally, and, with
    ``failures_as_worst``, trials failed by the model ranked last in their generation."""

    _index: _Index | None = None
    failures_as_worst = False
    _minimize = True  # the direction of the study last read
    _units: Units = {}  # ``valued``'s, per sampler
    _seen: list[FrozenTrial] = []  # the finished trials ``_get_trials`` read last
    _space: dict[str, Any] = {}  # the search space of the proposal being made
    # CmaEsSampler's (set by its constructor): how it starts.
    _source_trials: list[FrozenTrial] | None
    _x0: dict[str, Any] | None
    _sigma0: float | None
    _use_separable_cma: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._units = {}

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        incremental_space(self)
        return super().infer_relative_search_space(study, trial)  # type: ignore[safe-super]

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        self._space = search_space  # what ``_init_optimizer`` starts in
        return super().sample_relative(study, trial, search_space)  # type: ignore[safe-super]

    def _init_optimizer(self, trans: Any, direction: Any) -> Any:
        """CMA-ES's first distribution. Optuna's is centred in the space, a sixth of its
        range wide, whatever the study holds: the trials of a warm start (told, never
        trained here) only counted as its start-up trials and taught it nothing. Where the
        study holds them and neither ``x0`` nor ``sigma0`` is given, it starts from them:
        Optuna's WS-CMA-ES (``source_trials``) from ``WS_MIN`` or more, else centred on
        the best of them."""
        from optuna.study import StudyDirection

        own = (self._source_trials, self._x0, self._sigma0)
        warm = self._warm_trials() if own == (None, None, None) else []
        if not warm:
            return super()._init_optimizer(trans, direction)  # type: ignore[misc]
        if len(warm) >= WS_MIN and not self._use_separable_cma:
            self._source_trials = warm
        else:
            sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
            self._x0 = min(warm, key=lambda t: sign * float(t.value or 0.0)).params
        try:
            return super()._init_optimizer(trans, direction)  # type: ignore[misc]
        finally:
            self._source_trials, self._x0 = None, None

    def _warm_trials(self) -> list[FrozenTrial]:
        """The complete warm-start trials of the study last read that hold every parameter
        CMA-ES models, each cut to those (Optuna takes only a trial of its exact space)."""
        from optuna.trial import create_trial

        space = self._space
        found = []
        for t in self._seen:
            if t.state != TrialState.COMPLETE or WARM_START not in t.user_attrs:
                continue
            if t.value is None or not all(name in t.params for name in space):
                continue
            params = {name: t.params[name] for name in space}
            found.append(create_trial(params=params, distributions=dict(space), value=t.value))
        return found

    def _get_trials(self, study: Study) -> list[FrozenTrial]:
        from optuna.study import StudyDirection

        self._minimize = study.direction == StudyDirection.MINIMIZE
        trials = study._get_trials(deepcopy=False, use_cache=True)
        if trials and trials[-1].number != len(trials) - 1:  # not one study's list
            self._index = None
            chosen = super()._get_trials(study)  # type: ignore[misc]
            if self.failures_as_worst:
                failed = [t for t in trials if failed_by_model(t)]
                chosen = sorted([*chosen, *failed], key=lambda t: t.number)
            self._seen = chosen
            return chosen
        index = self._index
        if index is None or index.study_name != study.study_name:
            keys = (self._attr_key_generation, self._attr_key_optimizer)  # type: ignore[attr-defined]
            index = self._index = _Index(study.study_name, *keys)
        pruned_too = self._consider_pruned_trials  # type: ignore[attr-defined]
        index.update(trials, study, pruned_too, self.failures_as_worst)
        self._seen = index.complete
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
            chosen = super()._get_solution_trials(trials, generation)  # type: ignore[misc]
        else:
            chosen = [trial for _, trial in index.generations.get(generation, [])]
        if not self.failures_as_worst:
            return chosen
        return valued(chosen, self._minimize, trials[-RECENT:], self._units)
