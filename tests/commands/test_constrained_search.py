"""A search with outcome constraints, end to end: the best trial everywhere a user reads
one (the API, ``status``, ``export``, the report, the ensemble's pool, the Pareto front)
is the best of the trials that keep the constraints, and the report marks the others."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

import supervisor
from supervisor.commands.status import print_status
from supervisor.ensemble import members
from supervisor.errors import UserError
from supervisor.report.campaign import Campaign
from supervisor.report.pareto import render_pareto_report
from supervisor.study import attrs
from supervisor.study.feasibility import feasible
from supervisor.study.storage import open_storage

TOY = "tests.toy_benchmark:ToyBenchmark"


def test_every_best_of_a_constrained_search_keeps_the_constraints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # loss = (x - 2)^2, score = -loss: ``score <= -1`` keeps loss >= 1. The first two
    # trials are the best values of the search, and both break the constraint.
    space = {
        "study": "kept",
        "benchmark": TOY,
        "objectives": ["loss"],
        "params": {"x": {"type": "float", "low": -4, "high": 4}},
        "budget": {"trials": 10},
        "seed": 3,
        "enqueue": [{"x": 2.0}, {"x": 1.5}],
        "constraints": {"score": {"max": -1}},
    }
    run = supervisor.search(space, workers=2, progress="none")
    study = run.study
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 10
    kept = [t for t in done if t.values[0] >= 1.0]
    best = min(kept, key=lambda t: (t.values[0], t.number))
    assert {t.number for t in done} - {t.number for t in kept} >= {0, 1}
    assert [t.number for t in done if feasible(t)] == [t.number for t in kept]

    assert run.best.number == best.number
    status = run.status()
    assert status.best_number == best.number and status.infeasible == len(done) - len(kept)
    frame = run.trials.set_index("number")
    assert not frame.loc[0, "feasible"] and frame.loc[best.number, "feasible"]
    assert members.ranked(study, maximize=False)[0].number == best.number
    assert not {0, 1} & {t.number for t in members.ranked(study, maximize=False)}

    assert run.report_path is not None
    html = run.report_path.read_text()
    assert f"Best trial: #{best.number}</h3>" in html
    assert "score &lt;= -1 (the tpe sampler steers by them)" in html
    assert f"{len(kept)} of 10 complete trials keep them" in html
    assert "complete trials that break the constraints (never counted as the best)" in html
    assert "score by 1</td>" in html  # trial 0: loss 0, a score of 0 is 1 above its bound


def _trial(number: int, values: list[float], violation: float) -> optuna.trial.FrozenTrial:
    t = create_trial(
        values=values,
        params={"x": float(number)},
        distributions={"x": FloatDistribution(0, 10)},
        system_attrs={"constraints:n_params": violation},
    )
    t.number, t.datetime_complete = number, dt.datetime(2026, 1, 1)
    return t


def test_the_pareto_front_and_the_api_hold_only_trials_that_keep_the_constraints(
    tmp_path: Path,
) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_user_attr(attrs.OBJECTIVES, ["loss", "latency_ms"])
    study.set_user_attr(attrs.CONFIG, {"constraints": {"n_params": {"max": 100}}})
    # Trial 0 dominates every other, and breaks the constraint.
    for number, values, violation in [
        (0, [0.0, 0.0], 5.0),
        (1, [1.0, 3.0], 0.0),
        (2, [3.0, 1.0], -1.0),
        (3, [4.0, 4.0], -1.0),
    ]:
        study.add_trial(_trial(number, values, violation))
    camp = Campaign.load(study)
    assert [t.number for t in camp.pareto] == [1, 2]
    page = render_pareto_report(study)
    assert "n_params &lt;= 100" in page and "3 of 4 complete trials keep them" in page
    assert "grey: trials that break the constraints" in page

    url = f"journal:{tmp_path / 'journal.log'}"
    alone = optuna.create_study(study_name="alone", storage=open_storage(url))
    alone.add_trial(_trial(0, [0.0], 5.0))  # complete, and breaks the constraint
    run = supervisor.Run(study_name="alone", run_dir=tmp_path, storage_url=url)
    with pytest.raises(UserError, match="no trial keeps the constraints yet"):
        run.best  # noqa: B018
    console = Console(record=True, width=120)
    status = print_status(alone, console)  # Optuna's best_trial raises here: none feasible
    assert status.best_number is None and status.infeasible == 1
    assert "best: none yet (every complete trial breaks the constraints)" in console.export_text()


def test_the_report_says_which_trials_did_not_measure_a_constrained_metric() -> None:
    """A trial without the metric, or with it NaN, breaks the bound by a stand-in value
    (Optuna needs a number); the report showed it as a distance ("aux by 1")."""
    from supervisor.report.search import render_search_report

    study = optuna.create_study()
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    study.set_user_attr(attrs.CONFIG, {"constraints": {"aux": {"max": 0.6}}})
    for number, aux in [(0, 0.5), (1, float("nan")), (2, None), (3, 0.9)]:
        metrics = {"loss": float(number)} | ({} if aux is None else {"aux": aux})
        violation = 1.0 if aux is None or aux != aux else aux - 0.6
        t = _trial(number, [float(number)], violation)
        t.system_attrs = {"constraints:aux": violation}
        t.user_attrs = {attrs.METRICS: metrics}
        study.add_trial(t)
    page = render_search_report(study)
    assert "aux is nan</td>" in page and "aux not measured</td>" in page
    assert "aux by 0.3</td>" in page and "aux by 1</td>" not in page
