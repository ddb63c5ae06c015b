"""A bounded, representative view of a large study for model-based samplers.

TPE's cost per proposal grows with the trials it models (Python loops over every trial
and every parameter: ~25 ms at 1,000 finished trials, ~170 ms at 10,000 here), GP's is
cubic, so a campaign of 10,000+ trials would spend its driver on the sampler. Above
``limit`` finished trials, ``BoundedHistory`` hands its sampler a view of the study
that holds ``limit`` of them:

* the best ``limit // 10`` trials (they include TPE's "good" set, at most 25 trials, and
  the region a GP must model well; a trial that breaks a constraint of the space file
  ranks after every one that keeps them, as in TPE's split);
* the rest, stratified by rank: every k-th of the others in order of their objective, so
  the view keeps the distribution of the whole history (TPE's "bad" density) at a fixed
  cost;
* the trials that failed by the model (a sampler may learn where training fails), at the
  same sampling rate;
* the pending (unfinished: running, or waiting in the queue, which no Optuna sampler
  models) trials at the same sampling rate, at least ``MIN_PENDING`` of
  them (the most recent first), so pending points still push proposals apart.

The pending trials are capped at ``limit`` below the limit too: with thousands of trials
in flight and few finished (a campaign's first wave on 10,000 workers), TPE would model
every one of them as a constant liar, ~24 ms a proposal with 1,800 pending. Multi-objective
studies rank a trial by its best rank over the objectives (each objective's best trials
are kept). With at most ``limit`` finished and ``limit`` pending trials the sampler sees
the study as it is.
Only the sampling itself sees the view: the search space is inferred from the whole
study, and ``before_trial``, ``after_trial`` and reseeding are the sampler's own.

The search space is Optuna's intersection of the finished trials' distributions, kept
incrementally (``IncrementalIntersection``): Optuna's re-reads every trial since the
oldest unfinished one on each proposal, thousands with many trials in flight.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

import supervisor.optuna_internals as internals
from supervisor.unfinished import Unfinished

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution

FAILURE = "failure"  # = supervisor.study.attrs.FAILURE (the study layer sits above this one)
MIN_LIMIT = 50  # a smaller view would no longer represent anything
MIN_PENDING = 32  # pending trials kept in the view, at least (when there are so many)
GOOD_SHARE = 10  # 1 / GOOD_SHARE of the view: the best trials


def failed_by_model(trial: FrozenTrial) -> bool:
    """A failure of the configuration itself (it raised, diverged, hit a limit), not of
    the machine it ran on or of the campaign: one a sampler can learn from."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(FAILURE, "model") == "model"


class StudyView:
    """``study`` as the inner sampler sees it: its trials are ``trials``; everything else
    (directions, storage, attributes) is the study's. ``finished_total``: how many trials
    of the study have finished (a view holds some of them), where known. ``all_trials``:
    every trial of the study, for what must not miss one (a sampler that never proposes a
    configuration twice)."""

    def __init__(
        self,
        study: Study,
        trials: list[FrozenTrial],
        finished_total: int | None = None,
        all_trials: list[FrozenTrial] | None = None,
    ) -> None:
        self._study_ = study
        self._trials_ = trials
        self.finished_total = finished_total
        self.all_trials = trials if all_trials is None else all_trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study_, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        if states is None:
            found = self._trials_  # as Study._get_trials(use_cache=True) hands its cache
        else:
            found = [t for t in self._trials_ if t.state in states]
        return copy.deepcopy(found) if deepcopy else found

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy, states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self._get_trials()


def _spaced(items: Sequence[FrozenTrial], k: int, start: int = 0) -> list[FrozenTrial]:
    """``k`` of ``items[start:]`` evenly spaced, the last one included (indexed, not
    sliced: ``items`` may look its entries up lazily)."""
    n = len(items) - start
    if k <= 0 or n <= 0:
        return []
    if k >= n:
        return [items[start + i] for i in range(n)]
    step = n / k
    return [items[start + n - 1 - int(i * step)] for i in reversed(range(k))]


def _scores(trials: list[FrozenTrial], directions: Sequence[StudyDirection]) -> list[float]:
    """Lower is better: the objective (signed), or the best rank over the objectives."""
    import numpy as np

    signs = np.array([1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions])
    values = np.array([t.values for t in trials], dtype=float) * signs
    if values.shape[1] == 1:
        return list(values[:, 0])
    ranks = values.argsort(axis=0).argsort(axis=0)
    return list(ranks.min(axis=1).astype(float))


def _infeasible(trial: FrozenTrial) -> bool:
    """Whether the trial breaks a constraint of the study (Optuna's rule, as TPE's): it
    ranks after every feasible one, whatever its value."""
    return any(v > 0 for v in trial.constraints.values())


def _select(
    ranked: Sequence[FrozenTrial],
    pruned: Sequence[FrozenTrial],
    unfinished: Sequence[FrozenTrial],
    limit: int,
    failed: Sequence[FrozenTrial] = (),
) -> list[FrozenTrial]:
    """The view of ``limit`` finished trials (see the module's docstring), in number order;
    ``ranked``: the complete trials, best first; ``failed``: those failed by the model."""
    finished = len(ranked) + len(pruned) + len(failed)
    good = max(1, limit // GOOD_SHARE)
    share = (limit - good) / max(1, finished - good)  # sampling rate of the rest
    keep = [ranked[i] for i in range(min(good, len(ranked)))]
    keep += _spaced(ranked, round(share * (len(ranked) - good)), start=good)
    keep += _spaced(pruned, round(share * len(pruned)))
    keep += _spaced(failed, round(share * len(failed)))
    pending = max(min(len(unfinished), MIN_PENDING), round(share * len(unfinished)))
    keep += _spaced(unfinished, min(pending, limit))
    return sorted(keep, key=lambda t: t.number)


def representative(
    trials: list[FrozenTrial], limit: int, directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
    """The trials a sampler models: all of them up to ``limit`` finished ones, else the
    view described in the module's docstring (in trial-number order)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    unfinished = [t for t in trials if not t.state.is_finished()]
    failed = [t for t in trials if failed_by_model(t)]
    if len(complete) + len(pruned) + len(failed) <= limit and len(unfinished) <= limit:
        return trials
    scores = _scores(complete, directions)
    pairs = sorted(zip(scores, complete, strict=True), key=lambda p: (_infeasible(p[1]), p[0]))
    ranked = [t for _, t in pairs]
    return _select(ranked, pruned, unfinished, limit, failed)


class Ranking:
    """``representative`` for one single-objective study, kept up to date incrementally:
    a finished trial never changes, so each call looks only at the trials that finished
    since the last one (``supervisor.unfinished``, as ``supervisor.study.index`` does),
    and inserts the newly complete into a sorted list. Its cost per call grows with
    ``limit`` and the trials that finished meanwhile (plus a sort of the unfinished
    numbers when they are more than ``limit``), not with the study."""

    def __init__(self, sign: float) -> None:
        self.sign = sign  # 1: minimize, -1: maximize
        self.unfinished = Unfinished()
        # ((infeasible, score), number) of complete trials: the feasible ones rank first.
        self.order: list[tuple[tuple[bool, float], int]] = []
        self.pruned: list[int] = []
        self.failed: list[int] = []  # failed by the model (infrastructure ones run again)

    @property
    def finished(self) -> int:
        """Complete, pruned and failed (by the model) trials as of the last view."""
        return len(self.order) + len(self.pruned) + len(self.failed)

    def view(
        self, trials: list[FrozenTrial], limit: int, study: Study | None = None, startup: int = 0
    ) -> list[FrozenTrial]:
        """``trials``: the study's, in number order; ``study``: the study they are of (its
        storage may say which finished, ``supervisor.unfinished``); ``startup``: below
        this many finished trials the sampler draws at random, having counted them: the
        view is the finished trials alone (a first wave's thousands of pending trials
        would only be filtered out, per parameter, to count them)."""
        if trials and trials[-1].number != len(trials) - 1:  # not one study's list: no index
            raise ValueError("trials are not numbered by their position")
        # Sorted inserts: the order the finished are taken in does not matter.
        for n in self.unfinished.finished(trials, study):
            t = trials[n]
            if t.state == TrialState.COMPLETE and t.values is not None:
                bisect.insort(self.order, ((_infeasible(t), self.sign * float(t.values[0])), n))
            elif t.state == TrialState.PRUNED:
                bisect.insort(self.pruned, n)
            elif failed_by_model(t):
                bisect.insort(self.failed, n)
        if self.finished < startup:
            return [
                trials[n]
                for n in sorted([*(n for _, n in self.order), *self.pruned, *self.failed])
            ]
        open_ = self.unfinished.open
        if self.finished <= limit and len(open_) <= limit:
            return trials
        unfinished = _Lazy(trials, sorted(open_))  # only the ones the view takes are read
        # Only the ranks the view takes are looked up (``_select`` on a lazy sequence).
        ranked = _Lazy(trials, self.order, field=1)
        pruned = _Lazy(trials, self.pruned)
        return _select(ranked, pruned, unfinished, limit, _Lazy(trials, self.failed))


class _Lazy(Sequence[FrozenTrial]):
    """The trials numbered by ``entries`` (the complete ones in rank order: the number is
    ``field`` 1 of each; the pruned ones: the entries are numbers), looked up only where
    indexed."""

    def __init__(self, trials: list[FrozenTrial], entries: list[Any], field: int | None = None):
        self.trials, self.entries, self.field = trials, entries, field

    def _trial(self, entry: Any) -> FrozenTrial:
        return self.trials[entry if self.field is None else entry[self.field]]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._trial(e) for e in self.entries[i]]
        return self._trial(self.entries[i])


class IncrementalIntersection(IntersectionSearchSpace):
    """Optuna's ``IntersectionSearchSpace`` (the distributions every finished trial of
    the counted states shares: complete, and pruned with ``include_pruned``), folded in
    as each trial finishes. Optuna's caches up to its oldest unfinished trial and so
    compares every distribution of every trial since then on each call: with a long
    trial among thousands in flight, thousands of trials. Here a call looks at the
    trials that finished since the last one (``supervisor.unfinished``: O(those) on the
    campaign journal, O(in flight) state checks on other storages).
    The intersection does not depend on the order it is folded in: the same space."""

    def __init__(self, include_pruned: bool = False) -> None:
        super().__init__(include_pruned)
        self.counted = (TrialState.COMPLETE, TrialState.PRUNED)[: 2 if include_pruned else 1]
        self.study_name: str | None = None
        self.unfinished = Unfinished()
        self.space: dict[str, BaseDistribution] | None = None  # None: no trial folded yet

    def calculate(self, study: Study, use_cache: bool = False) -> dict[str, BaseDistribution]:
        if self.study_name is None:
            self.study_name = study.study_name
        elif study.study_name != self.study_name:
            raise ValueError("`IntersectionSearchSpace` cannot handle multiple studies.")
        trials = study._get_trials(deepcopy=False, use_cache=use_cache)
        if len(trials) < self.unfinished.seen or (trials and trials[-1].number != len(trials) - 1):
            return super().calculate(study, use_cache)  # not one study's list: Optuna's
        for n in self.unfinished.finished(trials, study):
            trial = trials[n]
            if trial.state not in self.counted:
                continue
            if self.space is None:
                self.space = copy.copy(trial.distributions)
            else:
                found = trial.distributions
                self.space = {k: d for k, d in self.space.items() if found.get(k) == d}
        return copy.deepcopy(dict(sorted((self.space or {}).items())))


def incremental_space(sampler: Any) -> None:
    """Once per sampler: its intersection search spaces kept incrementally
    (``IncrementalIntersection``: the same space, at a cost that does not grow with the
    study)."""
    if not sampler.__dict__.get("_incremental_space"):
        internals.replace_intersections(sampler, IncrementalIntersection)
        sampler._incremental_space = True


class BoundedHistory(BaseSampler):
    """Placed before an Optuna sampler class (``class S(BoundedHistory, TPESampler)``):
    the sampler models at most ``history_limit`` finished trials (``representative``).
    Stays an instance of its Optuna class, so everything that looks at the class, or at
    its random states, still finds it."""

    history_limit: int | None = None  # None: the whole study
    # Trials failed by the model shown to the sampler as pruned ones (TPE's ``failures:
    # avoid``): TPE leaves failed trials out, and ranks pruned ones below every complete
    # one, so what fails joins its density of bad configurations.
    failures_as_pruned = False
    # The trial whose view was made last, the study's trials then, and the view.
    _history: tuple[int, StudyView, StudyView] | None = None
    # The last snapshot read (a StudyView), its view as a whole and the trials chosen.
    _snapshot: tuple[Any, StudyView, list[FrozenTrial]] | None = None
    _ranking: Ranking | None = None
    # Proposals not in the study yet, modelled as pending (``supervisor.study.proposer``).
    extra_pending: tuple[FrozenTrial, ...] = ()

    def _views(self, study: Study, trial: FrozenTrial) -> tuple[StudyView, StudyView]:
        """(every trial, the bounded view) for ``trial``, made once per trial: the search
        space, and TPE's sampling of each parameter, read the study several times. A
        snapshot of the study (a ``StudyView``: the proposer's one read for several
        proposals) keeps its selection for every trial asked on it; only the pending
        proposals added to it change."""
        cached = self._history
        if cached is not None and cached[0] == trial.number:
            return cached[1], cached[2]
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] is study:
            whole, chosen = snapshot[1], snapshot[2]
        else:
            whole, chosen = self._select(study)
            self._snapshot = (study, whole, chosen) if isinstance(study, StudyView) else None
        trials, total = whole._trials_, whole.finished_total
        if self.extra_pending:
            view = StudyView(study, [*chosen, *self.extra_pending], total, trials)
        else:
            view = whole if chosen is trials else StudyView(study, chosen, total, trials)
        self._history = (trial.number, whole, view)
        return whole, view

    def _select(self, study: Study) -> tuple[StudyView, list[FrozenTrial]]:
        """The study's trials as a view, and the ones the bounded view models."""
        trials = study._get_trials(deepcopy=False, use_cache=False)
        limit = max(MIN_LIMIT, self.history_limit or 0)
        if len(study.directions) == 1:
            if self._ranking is None:
                sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
                self._ranking = Ranking(sign)
            startup = getattr(self, "_n_startup_trials", 0)  # TPE's and GP's
            chosen = self._ranking.view(trials, limit, study, startup)
            total = self._ranking.finished
        else:
            chosen = representative(trials, limit, study.directions)
            done = (TrialState.COMPLETE, TrialState.PRUNED)
            total = sum(t.state in done or failed_by_model(t) for t in trials)
        if self.failures_as_pruned:
            chosen = self._failures_pruned(chosen)
        return StudyView(study, trials, total), chosen

    def _failures_pruned(self, chosen: list[FrozenTrial]) -> list[FrozenTrial]:
        """``chosen`` with each trial failed by the model as a pruned copy (made once)."""
        if self._ranking is not None:  # its failed trials are known; none: nothing to do
            if not self._ranking.failed:
                return chosen
            failed: Container[int] = set(self._ranking.failed)
        else:
            failed = {t.number for t in chosen if failed_by_model(t)}
        copies: dict[int, FrozenTrial] = self.__dict__.setdefault("_pruned_copies", {})
        shown = []
        for t in chosen:
            if t.number in failed and t.state == TrialState.FAIL:
                found = copies.get(t.number)
                if found is None:
                    found = copies[t.number] = copy.copy(t)
                    found.state = TrialState.PRUNED
                t = found
            shown.append(t)
        return shown

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        incremental_space(self)
        if self.history_limit is None:
            return super().infer_relative_search_space(study, trial)  # type: ignore[safe-super]
        whole, _ = self._views(study, trial)
        return super().infer_relative_search_space(whole, trial)  # type: ignore[arg-type,safe-super]

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self.history_limit is None:
            return super().sample_relative(study, trial, search_space)  # type: ignore[safe-super]
        _, view = self._views(study, trial)
        return super().sample_relative(view, trial, search_space)  # type: ignore[arg-type,safe-super]

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if self.history_limit is not None:
            study = self._views(study, trial)[1]  # type: ignore[assignment]
        return super().sample_independent(study, trial, param_name, param_distribution)  # type: ignore[safe-super]
