"""TPE without the work a proposal does not need to repeat.

Two costs of a TPE proposal repeat work done for the one before:

* Before each proposal TPE turns the parameters of every trial it models into its
  internal representation (a Python loop over trials x parameters, and for each running
  trial a JSON parse of the parameters it was proposed with, which constant liar reads).
  With a view of 300 finished and 300 pending trials that loop was the largest single
  cost of a proposal at 10,000 workers. A trial's parameters never change once they
  cover the search space (a finished trial's are final; a running trial's were fixed
  when it was proposed), so each trial's converted row is kept: the arrays handed to TPE
  are the ones Optuna builds (same values, dtypes and order), the proposals identical.
* When results and free slots come faster than TPE fits (thousands of workers), TPE
  splits and fits nearly the same trials for every proposal. One fit then serves
  several: it is reused while (a) no result that arrived since would join TPE's good
  group (single objective: none is at least as good as the fit's worst good trial, and
  the size of that group, ``gamma(n)``, is unchanged), so the density proposals are drawn
  from is the one a new fit would make; and (b) the trials it has not seen (results since,
  and proposals made from it, which a new fit would model as constant liars) are at most
  ``1 / UNSEEN_SHARE`` of the trials it models: each moves the other density by about
  one point among those. With outcome constraints, only the results that keep them count
  for (a), as TPE ranks those first. Multi-objective studies, and TPE given a
  ``constraints_func``, reuse a fit only while no result arrived (a burst of proposals in
  one fill). Each proposal still
  draws its own candidates and keeps the best of them under the fit; the candidates of
  up to ``BATCH`` such proposals are drawn and scored in one pass, with the random state
  of the first (``supervisor.config.samplers.reseed``): one numpy pass costs less than
  several. A sequential campaign shares too, past 64 trials (the allowance is a share of
  the trials modelled), when its results leave the good group as it was; measured, the
  regret stays within the quartiles of unshared TPE (README, Search at scale). The
  sampler option ``share_fit: false`` turns sharing off.

``tests/config/test_tpe_memo.py`` checks both: the same proposals as Optuna's TPE where
no fit is shared, and a fit shared only as described.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import TrialState

import supervisor.optuna_internals as internals

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

MAX_SPACES = 8  # search spaces remembered (``group`` TPE asks for one per group)
UNSEEN_SHARE = 32  # a fit serves proposals up to 1/32 of the trials it models
BATCH = 8  # proposals whose candidates are drawn and scored together

Row = tuple[Any, ...]
Space = tuple[str, tuple[tuple[str, "BaseDistribution"], ...]]  # study name, space items


@dataclass
class Fit:
    """TPE's two densities for one search space and one set of finished trials."""

    space: Space
    numbers: frozenset[int]  # the finished trials it models
    total: int  # trials of the study finished when it was made (it may model a view)
    below: Any  # optuna's _ParzenEstimator of the good trials
    above: Any  # and of the others (with the pending ones, as constant liars)
    allowed: int  # trials it may not have seen (results since, proposals from it)
    good: int  # the size of the good group
    bar: float | None  # the worst good trial's score (lower is better); None: no reuse
    served: int = 0  # proposals made from it after the first
    queue: list[dict[str, Any]] = field(default_factory=list)  # drawn, not yet proposed

    def serves(self, finished: list[FrozenTrial], total: int, good: int, sign: float) -> bool:
        """Whether a new fit on ``finished`` (of ``total`` finished trials) would have the
        same good group, and a density of the others that differs by at most ``allowed``
        trials. A bounded view (``supervisor.config.history``) swaps some older trials in
        and out as results arrive: those are not results, and never good ones."""
        # Unseen: the results since, and its proposals (the first, its own, included).
        if 1 + self.served + (total - self.total) > self.allowed:
            return False
        if total == self.total:
            return True
        if self.bar is None or good != self.good:
            return False
        return all(
            t.state != TrialState.COMPLETE
            or _infeasible(t)
            or sign * float(t.values[0]) > self.bar
            for t in finished
            if t.number not in self.numbers
        )


class ReprMemo:
    """Placed before ``TPESampler`` in a class's bases: overrides its
    ``_get_internal_repr`` and ``_sample`` (``supervisor.optuna_internals`` lists the
    TPE names relied on; its test checks them against the installed Optuna)."""

    def _get_internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, BaseDistribution], study: Study
    ) -> dict[str, np.ndarray]:
        memo: dict[Space, dict[int, Row]] = self.__dict__.setdefault("_repr_rows", {})
        space = (study.study_name, tuple(search_space.items()))
        rows_of = memo.get(space)
        if rows_of is None:
            if len(memo) >= MAX_SPACES:
                memo.pop(next(iter(memo)))
            rows_of = memo[space] = {}
        names = list(search_space)
        rows: list[Row] = []
        for trial in trials:
            row = rows_of.get(trial.number)
            if row is None:
                params = self._get_params(trial, study)  # type: ignore[attr-defined]
                if not search_space.keys() <= params.keys():
                    continue  # it may cover the space later (a trial being proposed)
                row = tuple(search_space[n].to_internal_repr(params[n]) for n in names)
                rows_of[trial.number] = row
            rows.append(row)
        if not rows:
            return {n: np.asarray([]) for n in names}
        columns = zip(*rows, strict=True)
        return {n: np.asarray(column) for n, column in zip(names, columns, strict=True)}

    share_fit = True  # false (the sampler option): each proposal fits anew

    def _sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self.share_fit:
            return internals.tpe_sample(self, study, trial, search_space)
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        finished = study.get_trials(deepcopy=False, states=done)
        space = (study.study_name, tuple(search_space.items()))
        fits: dict[Space, Fit] = self.__dict__.setdefault("_shared_fits", {})
        fit = fits.pop(space, None)
        sign = self._sign(study)
        gamma = getattr(self, "_gamma", None)
        good = gamma(len(finished)) if callable(gamma) else -1
        total = getattr(study, "finished_total", None)
        total = len(finished) if total is None else total
        if fit is not None and fit.serves(finished, total, good, sign):
            if not fit.queue:  # draw for the next proposals it may serve, in one go
                left = fit.allowed - fit.served - (total - fit.total)  # this one included
                fit.queue = self._best_candidates(fit, search_space, max(1, min(BATCH, left)))
            fit.served += 1
            fits[space] = fit
            return fit.queue.pop(0)
        built: list[Any] = []
        build = self._build_parzen_estimator  # type: ignore[attr-defined]

        def keep(*args: Any, **kwargs: Any) -> Any:
            built.append(build(*args, **kwargs))
            return built[-1]

        self.__dict__["_build_parzen_estimator"] = keep  # Optuna's _sample: below, then above
        try:
            proposal = internals.tpe_sample(self, study, trial, search_space)
        finally:
            del self.__dict__["_build_parzen_estimator"]
        if len(built) == 2:
            if len(fits) >= MAX_SPACES:
                fits.pop(next(iter(fits)))
            gamma = self._gamma  # type: ignore[attr-defined]  # set by Optuna's first fit
            good = gamma(len(finished))
            modelled = len(finished) + self._pending(study)
            bar = self._bar(finished, good, sign) if sign else None
            numbers = frozenset(t.number for t in finished)
            allowed = modelled // UNSEEN_SHARE
            fits[space] = Fit(space, numbers, total, built[0], built[1], allowed, good, bar)
        return proposal

    def _sign(self, study: Study) -> float:
        """1 to minimise, -1 to maximise; 0 where results only reuse a fit when none
        arrived (several objectives, or constraints, which TPE ranks first)."""
        if len(study.directions) != 1 or getattr(self, "_constraints_func", None) is not None:
            return 0.0
        return 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0

    @staticmethod
    def _bar(finished: list[FrozenTrial], good: int, sign: float) -> float | None:
        """The score of the worst of the ``good`` best complete trials: a result better
        than it would join the good group. None: fewer complete trials than that (a
        pruned one is in the group). With constraints TPE ranks the trials that keep them
        first: those only (one that breaks them joins the others, unless the feasible and
        pruned ones are too few, when there is no bar)."""
        scores = sorted(
            sign * float(t.values[0])
            for t in finished
            if t.state == TrialState.COMPLETE and not _infeasible(t)
        )
        return scores[good - 1] if 0 < good <= len(scores) else None

    def _pending(self, study: Study) -> int:
        """The running trials TPE models (as constant liars; none without)."""
        if not getattr(self, "_constant_liar", False):
            return 0
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    def _best_candidates(
        self, fit: Fit, search_space: dict[str, BaseDistribution], proposals: int
    ) -> list[dict[str, Any]]:
        """What Optuna's ``_sample`` does after fitting, for ``proposals`` proposals:
        each its own ``n_ei_candidates`` candidates from the good density, the best of
        them under the ratio of the two. Scored in one pass (the same draws as one pass
        per proposal, at ~60 % of the cost for 8)."""
        n = self._n_ei_candidates  # type: ignore[attr-defined]
        samples = fit.below.sample(self._rng.rng, n * proposals)  # type: ignore[attr-defined]
        scores = self._compute_acquisition_func(samples, fit.below, fit.above)  # type: ignore[attr-defined]
        found = []
        for i in range(proposals):
            group = {name: values[i * n : (i + 1) * n] for name, values in samples.items()}
            best = self._compare(group, scores[i * n : (i + 1) * n])  # type: ignore[attr-defined]
            found.append({k: d.to_external_repr(best[k]) for k, d in search_space.items()})
        return found


def _infeasible(trial: FrozenTrial) -> bool:
    """Whether it breaks a constraint (Optuna's rule): TPE puts it after the others."""
    return any(v > 0 for v in trial.constraints.values())
