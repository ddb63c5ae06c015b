"""Stopping before the budget: ``budget.target`` and ``budget.patience``
(``supervisor.study.stopping``), through the real driver and in the rule itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import optuna
import pytest
from distributed import Client
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from supervisor.commands.status import read_status
from supervisor.study import attrs
from supervisor.study.driver import Driver
from supervisor.study.stopping import Stopping, StopRule
from tests.study.test_driver import experiment, make_study

X = "  x: {type: float, low: -4, high: 4}"
T0 = dt.datetime(2026, 1, 1)


def finished(
    number: int, value: float | None, at: int, state: TrialState = TrialState.COMPLETE, **attr: Any
) -> optuna.trial.FrozenTrial:
    t = create_trial(
        state=state,
        value=value,
        params={"x": 0.0},
        distributions={"x": FloatDistribution(-1, 1)},
        user_attrs=attr,
    )
    t.number, t.datetime_complete = number, T0 + dt.timedelta(seconds=at)
    return t


def test_a_reached_target_stops_the_campaign_and_its_resume_trains_nothing(
    tmp_path: Path, threads_client: Client
) -> None:
    # loss = (x - 2)^2: about one random trial in four has loss <= 1.
    exp = experiment(tmp_path, X, "{trials: 200, epochs: 1, target: 1.0}", "{delay: 0.05}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.stopped_by == "target" and summary.exit_code == 0
    assert summary.finished < 60
    assert summary.early.startswith("target reached by trial ")
    reached = int(summary.early.split("trial ")[1].split(":")[0])
    assert study.trials[reached].value is not None and study.trials[reached].value <= 1.0
    # Running trials finished (their results are data); none is left running.
    assert not study.get_trials(states=(TrialState.RUNNING,))
    study.set_user_attr(attrs.CONFIG, exp.to_dict())  # as `supervisor search` stores it
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    status = read_status(study)
    assert status.stopped == summary.early and status.left == 0
    # The report's summary says it too.
    from supervisor.report.campaign import Campaign
    from supervisor.report.summary import summary as report_summary

    html = "".join(str(part) for part in report_summary(Campaign.load(study), {}, []))
    assert "stopped early" in html and "target reached by trial" in html

    trained = len(study.trials)
    again = Driver(exp, study, threads_client, slots=2).run()
    assert again.stopped_by == "target" and again.exit_code == 0
    assert len(study.trials) == trained


def test_patience_stops_once_that_many_finished_trials_in_a_row_better_nothing(
    tmp_path: Path, threads_client: Client
) -> None:
    exp = experiment(tmp_path, X, "{trials: 300, epochs: 1, patience: 6}")
    study = make_study(exp)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.stopped_by == "patience" and summary.exit_code == 0
    assert summary.finished < 300
    # Judged in the order trials finished: the stop came with the sixth trial in a row
    # that bettered nothing; those still running then finished after it (any value).
    done = sorted(
        (t for t in study.trials if attrs.counts_toward_budget(t)),
        key=lambda t: (t.datetime_complete, t.number),
    )
    values = [t.value for t in done]
    first_quiet = next(
        i for i in range(6, len(values)) if min(values[i - 5 : i + 1]) > min(values[: i - 5])
    )
    # After it, at most the other trials in flight: 2 slots, one queued ahead per slot.
    assert first_quiet <= len(done) - 1 <= first_quiet + 3


def test_the_target_needs_every_objective_and_is_judged_by_direction() -> None:
    rule = StopRule.of(
        {"target": {"acc": 0.9, "latency": 5.0}},
        [("acc", "maximize"), ("latency", "minimize")],
    )
    stopping = Stopping(rule)
    two = [create_trial(values=v, params={}, distributions={}) for v in ([0.95, 7.0], [0.85, 3.0])]
    stopping.saw(two)
    assert stopping.reached is None
    stopping.saw([create_trial(values=[0.9, 5.0], params={}, distributions={})])
    assert stopping.reached == "target"


def test_patience_counts_finished_trials_in_the_order_they_finished() -> None:
    stopping = Stopping(StopRule(("minimize",), patience=3))
    # Numbers 0..5; trial 5 (the best) finished second: three after it better nothing.
    stopping.saw([finished(0, 4.0, at=0), finished(5, 1.0, at=1)])
    stopping.saw([finished(1, 2.0, at=2), finished(2, None, at=3, state=TrialState.PRUNED)])
    assert stopping.reached is None
    # Neither warm-start trials nor infrastructure failures are this campaign's trials.
    stopping.saw(
        [
            finished(6, 9.0, at=4, **{attrs.WARM_START: "old"}),
            finished(7, None, at=5, state=TrialState.FAIL, **{attrs.FAILURE: "infrastructure"}),
        ]
    )
    assert stopping.reached is None
    stopping.saw([finished(3, None, at=6, state=TrialState.FAIL)])  # a model failure counts
    assert stopping.reached == "patience"
    assert stopping.why == "no better trial in the last 3 finished: best 1 (trial 5)"


def test_a_study_written_before_these_keys_has_no_rule() -> None:
    assert not StopRule.of({"trials": 5}, [("loss", "minimize")]).active
    assert not StopRule.of({"patience": True, "target": [1]}, [("loss", "minimize")]).active


@pytest.mark.parametrize("text", ["target: 0.5", "patience: 4"])
def test_dry_run_says_when_the_campaign_stops_early(tmp_path: Path, text: str) -> None:
    from types import SimpleNamespace

    from supervisor.commands.summary import describe_experiment

    exp = experiment(tmp_path, X, f"{{trials: 20, {text}}}")
    opts = SimpleNamespace(runs_root=tmp_path, storage=None, scheduler=None, launcher=None)
    shown = describe_experiment(exp, opts)
    assert "stop early  once " in shown
    assert ("a trial has loss <= 0.5" if "target" in text else "4 finished trials in a") in shown


def test_a_configuration_known_from_warm_start_reaches_no_target(
    tmp_path: Path, threads_client: Client
) -> None:
    """A warm-start trial does not count toward the target, nor did its value count
    when the sampler proposed its configuration again: that duplicate, told the warm
    value untrained, stopped the campaign ("target reached") with nothing of it trained."""
    exp = experiment(tmp_path, "  x: {type: int, low: 0, high: 3}", "{trials: 8, target: 0.5}")
    study = make_study(exp)
    study.add_trial(  # loss (x - 2)^2: only x = 2 reaches the target
        create_trial(
            value=0.0,
            params={"x": 2},
            distributions={"x": exp.params[0].distribution()},
            user_attrs={attrs.WARM_START: "old#0"},
        )
    )
    summary = Driver(exp, study, threads_client, slots=1).run()
    duplicates = [t for t in study.trials if t.user_attrs.get(attrs.DUPLICATE_OF) == 0]
    assert duplicates, "the sampler proposed the warm-start configuration"
    assert summary.stopped_by == "budget" and summary.finished == 8 and not summary.early


def test_duplicates_better_nothing_for_patience() -> None:
    stopping = Stopping(StopRule(("minimize",), patience=2))
    stopping.saw([finished(0, 0.5, at=0, **{attrs.WARM_START: "old#3"}), finished(1, 2.0, at=1)])
    known = {attrs.DUPLICATE_OF: 0, attrs.DUPLICATE_KNOWN: True}
    stopping.saw([finished(2, 0.5, at=2, **known), finished(3, 3.0, at=3)])
    assert stopping.why == "no better trial in the last 2 finished: best 2 (trial 1)"
