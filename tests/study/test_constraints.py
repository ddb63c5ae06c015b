"""Outcome constraints in a campaign (``supervisor.study.feasibility``): each complete
trial carries Optuna's constraint values before it is told (the sampler steers by them),
duplicates and warm-start trials too; ``budget.target`` and ``patience`` count only trials
that keep the constraints; the bounded history and TPE's shared fit rank those first; a
resume with other constraints is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest
from distributed import Client
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from supervisor.config import history, space
from supervisor.config.warm_start import WarmSource
from supervisor.errors import UserError
from supervisor.study import attrs, warm_start
from supervisor.study.driver import Driver
from supervisor.study.enqueue import enqueue
from supervisor.study.feasibility import feasible
from supervisor.study.open_study import open_campaign_study
from supervisor.study.stopping import Stopping, StopRule
from tests.study.test_warm_start import _old_study

TOY = "tests.toy_benchmark:ToyBenchmark"
# loss = (x - 2)^2 and score = -loss: ``score <= -1`` keeps loss >= 1, which rules out the
# unconstrained optimum x = 2 (loss 0) and leaves two best points, x = 1 and x = 3.
KEEP_LOSS_ABOVE_1 = "constraints: {score: {max: -1}}\n"


def experiment(tmp_path: Path, params: str, budget: str, extra: str = "") -> space.Experiment:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: "{TOY}"\nobjectives: [loss]\nparams:\n{params}\nbudget: {budget}\n'
        f"seed: 5\n{KEEP_LOSS_ABOVE_1}{extra}"
    )
    return space.load(path)


def journal(tmp_path: Path) -> str:
    return f"journal:{tmp_path / 'journal.log'}"


def complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def test_the_unconstrained_optimum_reaches_no_target_and_tpe_is_told_each_verdict(
    tmp_path: Path, threads_client: Client
) -> None:
    # The first trial is the unconstrained optimum (loss 0, below the target, infeasible):
    # it must not stop the campaign; a trial with 1 <= loss <= 2 does.
    exp = experiment(
        tmp_path,
        "  x: {type: float, low: -4, high: 4}",
        "{trials: 120, epochs: 1, target: 2.0}",
        "sampler: {name: tpe, options: {n_startup_trials: 5}}\nenqueue: [{x: 2.0}]\n",
    )
    assert exp.sampler == "tpe"
    study = open_campaign_study(exp, journal(tmp_path))
    enqueue(study, exp.enqueue)  # as `supervisor search` does
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.stopped_by == "target", summary.early
    first = study.trials[0]
    assert first.params == {"x": 2.0} and first.value == 0.0
    assert first.constraints == {"score": 1.0} and not feasible(first)  # out by 1
    reached = int(summary.early.split("trial ")[1].split(":")[0])
    assert reached != 0 and 1.0 <= study.trials[reached].value <= 2.0
    # Every complete trial carries its verdict (Optuna's constraint values), set before it
    # was told: TPE read them for every proposal after it.
    for t in complete(study):
        assert set(t.constraints) == {"score"}
        assert feasible(t) == (t.user_attrs[attrs.METRICS]["score"] <= -1)
    assert study.best_trial.number != 0 and feasible(study.best_trial)
    # The summary counts the infeasible trials apart.
    assert summary.states.get("complete, breaking the constraints", 0) >= 1


def test_a_duplicate_carries_its_twins_verdict(tmp_path: Path, threads_client: Client) -> None:
    # Two configurations, six trials: most are duplicates. Without its twin's constraint
    # values a duplicate of x = 2 would count as feasible, and be the best (loss 0).
    exp = experiment(
        tmp_path,
        "  x: {type: categorical, choices: [0.0, 2.0]}",
        "{trials: 6, epochs: 1}",
        "sampler: random\n",
    )
    study = open_campaign_study(exp, journal(tmp_path))
    Driver(exp, study, threads_client, slots=1).run()
    duplicates = [t for t in complete(study) if attrs.DUPLICATE_OF in t.user_attrs]
    assert duplicates
    for t in complete(study):
        assert feasible(t) == (t.params["x"] == 0.0), (t.number, t.constraints)
    assert study.best_trial.params == {"x": 0.0}


def test_patience_and_target_count_only_trials_that_keep_the_constraints() -> None:
    t0 = dt.datetime(2026, 1, 1)

    def trial(number: int, value: float, violation: float) -> FrozenTrial:
        t = create_trial(
            value=value,
            params={"x": 0.0},
            distributions={"x": FloatDistribution(-1, 1)},
            system_attrs={"constraints:score": violation},
        )
        t.number, t.datetime_complete = number, t0 + dt.timedelta(seconds=number)
        return t

    stopping = Stopping(StopRule(("minimize",), target=((0, 1.0),), patience=3))
    stopping.saw([trial(0, 5.0, -1.0), trial(1, 0.0, 2.0)])  # the second breaks them
    assert stopping.reached is None and stopping.best == 5.0 and stopping.since_best == 1
    stopping.saw([trial(2, 0.5, 0.0)])  # on the bound: kept
    assert stopping.reached == "target" and "trial 2" in stopping.why
    patience = Stopping(StopRule(("minimize",), patience=2))
    patience.saw([trial(0, 5.0, -1.0), trial(1, 1.0, 0.5), trial(2, 2.0, 0.5)])
    assert patience.reached == "patience" and "best 5 (trial 0)" in patience.why


def test_warm_start_trials_are_judged_by_this_spaces_constraints(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    path.write_text(
        f'study: new\nbenchmark: "{TOY}"\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 3}\n"
        "constraints: {score: {min: 0}}\n"
    )
    exp = space.load(path)
    fitted = warm_start.fit(exp, WarmSource("old"), _old_study(), "warm_start: old")
    # The old trials measured score = -x at x = -3, -1, 2.
    verdicts = {t.params["x"]: feasible(t) for t in fitted.trials}
    assert verdicts == {-3.0: True, -1.0: True, 2.0: False}


def test_a_resume_with_other_constraints_is_refused(
    tmp_path: Path, threads_client: Client
) -> None:
    params = "  x: {type: float, low: -4, high: 4}"
    exp = experiment(tmp_path, params, "{trials: 2, epochs: 1}", "sampler: random\n")
    study = open_campaign_study(exp, journal(tmp_path))
    Driver(exp, study, threads_client, slots=1).run()
    assert open_campaign_study(exp, journal(tmp_path))  # the same: resumes
    other = space.loads(
        (tmp_path / "toy.yaml").read_text().replace("max: -1", "max: -2"), str(exp.file)
    )
    with pytest.raises(
        UserError, match=r"judged by score <= -1, the space file has score <= -2; keep them"
    ):
        open_campaign_study(other, journal(tmp_path))


def _ranked(violations: list[float]) -> list[FrozenTrial]:
    out = []
    for number, violation in enumerate(violations):
        t = create_trial(
            value=float(number),
            params={"x": number / 1000},
            distributions={"x": FloatDistribution(0.0, 1.0)},
            system_attrs={"constraints:m": violation},
        )
        t.number = number
        out.append(t)
    return out


def test_the_bounded_history_keeps_the_best_trials_that_keep_the_constraints() -> None:
    # 600 complete trials: the best values (low numbers) break the constraints. The view's
    # best tenth must be the best of those that keep them, as TPE ranks them.
    trials = _ranked([1.0] * 300 + [-1.0] * 300)
    for view in (
        history.representative(trials, 100, [optuna.study.StudyDirection.MINIMIZE]),
        history.Ranking(1.0).view(trials, 100),
    ):
        best = sorted(view, key=lambda t: t.number)
        assert [t.number for t in best if feasible(t)][:10] == list(range(300, 310))
