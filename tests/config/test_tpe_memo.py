"""TPE with each trial's observations converted once proposes exactly what Optuna's TPE
proposes: same seeds, same history, running trials (constant liar) included."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest

from supervisor.config import tpe_memo
from supervisor.config.samplers import make_sampler
from supervisor.config.tpe_memo import ReprMemo

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective_params(trial: optuna.Trial) -> tuple[float, ...]:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    n = trial.suggest_int("n", 1, 9, step=2)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return (x - 1) ** 2 + math.log(y) ** 2 + n / 3 + {"a": 0.5, "b": 0.0, "c": 1.0}[kind], -x


def _campaign(sampler: optuna.samplers.BaseSampler, objectives: int) -> list[dict[str, Any]]:
    """40 trials, four in flight at a time, told in a shuffled order."""
    directions: list[Any] = ["minimize", "maximize"][:objectives]
    study = optuna.create_study(directions=directions, sampler=sampler)
    proposed, running = [], []
    for step in range(40):
        trial = study.ask()
        values = _objective_params(trial)[:objectives]
        proposed.append(dict(trial.params))
        running.append((trial, values))
        if len(running) == 4:
            for trial, values in (running[2], running[0], running[3], running[1]):
                study.tell(trial, list(values) if objectives > 1 else values[0])
            running = []
        if step % 7 == 6 and running:  # a pruned trial in between
            trial, _ = running.pop(0)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return proposed


@pytest.mark.parametrize("objectives", [1, 2])
@pytest.mark.parametrize(
    "options",
    [{}, {"multivariate": False}, {"group": True}, {"constant_liar": False}, {"history": 50}],
)
def test_memoised_observations_give_optunas_proposals(
    objectives: int, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tpe_memo, "UNSEEN_SHARE", 10**9)  # no fit shared: each its own
    options = {"n_startup_trials": 5, **options}
    memo = make_sampler("tpe", options, seed=3)
    assert isinstance(memo, ReprMemo)
    assert _campaign(memo, objectives) == _campaign(_optunas(options), objectives)
    assert memo.__dict__["_repr_rows"], "the memo was not used"


def _optunas(options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The same sampler with Optuna's own methods: ReprMemo's overrides taken out."""
    plain = make_sampler("tpe", options, seed=3)
    tpe = optuna.samplers.TPESampler
    members = {"_get_internal_repr": tpe._get_internal_repr, "_sample": tpe._sample}
    plain.__class__ = type("Plain", (plain.__class__,), members)
    return plain


def test_rows_are_kept_per_trial_and_trials_not_covering_the_space_are_skipped() -> None:
    study = optuna.create_study(sampler=make_sampler("tpe", {"n_startup_trials": 2}, seed=0))
    for _ in range(6):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, trial.params["x"])
    partial = study.ask()  # proposed, its parameters not suggested yet
    sampler = study.sampler
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    trials = study.get_trials(deepcopy=False)
    found = sampler._get_internal_repr(trials, space, study)  # type: ignore[union-attr]
    assert list(found["x"]) == [t.params["x"] for t in trials[:6]]
    assert partial.number not in next(iter(sampler.__dict__["_repr_rows"].values()))


def _study(finished: int) -> optuna.Study:
    study = optuna.create_study(sampler=make_sampler("tpe", {"n_startup_trials": 5}, seed=1))
    for _ in range(finished):
        trial = study.ask()
        study.tell(trial, _objective_params(trial)[0])
    return study


def _count_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    fits: list[int] = []
    build = optuna.samplers.TPESampler._build_parzen_estimator

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return build(self, *args, **kwargs)

    monkeypatch.setattr(optuna.samplers.TPESampler, "_build_parzen_estimator", counted)
    return fits


def test_a_burst_of_proposals_shares_fits_and_a_result_fits_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _study(200)  # all of them modelled (the view is bounded at 300)
    fits = _count_fits(monkeypatch)
    passes: list[int] = []
    score = optuna.samplers.TPESampler._compute_acquisition_func

    def counted(self: Any, samples: Any, *args: Any) -> Any:
        passes.append(len(next(iter(samples.values()))))
        return score(self, samples, *args)

    monkeypatch.setattr(optuna.samplers.TPESampler, "_compute_acquisition_func", counted)
    burst = []
    for _ in range(64):  # 64 slots freed at once: no result between the proposals
        trial = study.ask()
        _objective_params(trial)
        burst.append(trial)
    # 200 finished + the pending ones modelled: a fit serves 1 + 6 .. 8 proposals.
    assert 2 * 8 <= len(fits) <= 2 * 10, len(fits)
    assert len({tuple(t.params.items()) for t in burst}) == 64  # each its own candidates
    # The proposals a fit serves after its first are scored in one pass, 24 candidates
    # each (the last fit's pass may draw for proposals the burst did not need).
    assert 24 * 64 <= sum(passes) < 24 * (64 + tpe_memo.BATCH)
    assert len(passes) <= len(fits) < 64 // 2
    fits.clear()
    study.tell(burst[0], 1.0)
    _objective_params(study.ask())  # a new result: never the old fit
    assert len(fits) == 2


def test_one_proposal_per_result_fits_each_as_optuna_does() -> None:
    """Few in flight: a result arrives between proposals, so no fit is ever shared."""

    def sequential(sampler: optuna.samplers.BaseSampler) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=sampler)
        proposed = []
        for _ in range(40):
            trial = study.ask()
            study.tell(trial, _objective_params(trial)[0])
            proposed.append(trial.params)
        return proposed

    options = {"n_startup_trials": 5}
    assert sequential(make_sampler("tpe", options, seed=3)) == sequential(_optunas(options))


def test_results_that_would_not_join_the_good_group_keep_the_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _study(300)  # TPE's good group: the best 25 (and a view of 300 trials)
    pending = [study.ask() for _ in range(40)]
    for trial in pending:
        _objective_params(trial)
    fits = _count_fits(monkeypatch)
    study.tell(pending.pop(), -1e5)  # a new best
    _objective_params(study.ask())  # a fresh fit: 300 finished + 40 pending modelled
    assert len(fits) == 2
    study.tell(pending.pop(), 1e6)  # worse than every good trial: the same good group
    study.tell(pending.pop(), state=optuna.trial.TrialState.PRUNED)
    _objective_params(study.ask())
    assert len(fits) == 2, "a result that changes nothing TPE draws from refitted"
    study.tell(pending.pop(), -1e6)  # a new best: the good group changed
    _objective_params(study.ask())
    assert len(fits) == 4
    for _ in range(7):  # 340 modelled: a fit may miss 10 trials, then it is made anew
        study.tell(pending.pop(), 1e6)
        _objective_params(study.ask())
    assert len(fits) == 6


def test_several_objectives_refit_on_every_result(monkeypatch: pytest.MonkeyPatch) -> None:
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=make_sampler("tpe", {"n_startup_trials": 5}, seed=1),
    )
    for _ in range(200):
        trial = study.ask()
        study.tell(trial, list(_objective_params(trial)))
    pending = [study.ask() for _ in range(4)]
    fits = _count_fits(monkeypatch)
    for trial in pending:  # one fill: a fit (per parameter: independent TPE) serves all
        _objective_params(trial)
    assert len(fits) == 2 * 4
    study.tell(pending[0], [1e6, -1e6])  # dominated by everything: still a refit
    _objective_params(study.ask())
    assert len(fits) == 2 * 4 * 2


def test_share_fit_false_is_optunas_tpe_in_bursts_too() -> None:
    """The sampler option ``share_fit: false``: four proposals in a row, each fitted."""
    options = {"n_startup_trials": 5}
    exact = _campaign(make_sampler("tpe", {**options, "share_fit": False}, seed=3), 1)
    assert exact == _campaign(_optunas(options), 1)
    assert _campaign(make_sampler("tpe", options, seed=3), 1) != exact  # shared: others


def test_with_constraints_only_results_that_keep_them_change_the_good_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TPE ranks the trials that keep the constraints first: a feasible result better
    than its good ones refits, however good the infeasible values; an infeasible result,
    however good its value, does not join the good group (supervisor.study.feasibility)."""

    def told(trial: optuna.Trial, value: float) -> None:
        trial.set_constraint("c", 1.0 - value)  # feasible from value 1 on, as the driver does
        study.tell(trial, value)

    study = optuna.create_study(sampler=make_sampler("tpe", {"n_startup_trials": 5}, seed=1))
    for _ in range(300):  # a fifth of them infeasible, with the best values
        trial = study.ask()
        told(trial, trial.suggest_float("x", -5.0, 5.0) ** 2)
    pending = [study.ask() for _ in range(40)]
    for trial in pending:
        trial.suggest_float("x", -5.0, 5.0)
    fits = _count_fits(monkeypatch)
    study.ask().suggest_float("x", -5.0, 5.0)
    made = len(fits)
    told(pending.pop(), 0.0)  # the best value, infeasible: TPE's good group is the same
    study.ask().suggest_float("x", -5.0, 5.0)
    assert len(fits) == made, "an infeasible result refitted"
    told(pending.pop(), 1.0)  # on the bound, better than every feasible one: a new best
    study.ask().suggest_float("x", -5.0, 5.0)
    assert len(fits) == made + 2, "a new feasible best kept a fit that lacks it"
