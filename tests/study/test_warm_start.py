"""Warm start: an earlier run's finished trials told to a new study, untrained, once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from supervisor.config import space
from supervisor.config.params import ParamSpec
from supervisor.config.warm_start import WarmSource
from supervisor.errors import SpaceError, UserError
from supervisor.study import attrs, warm_start
from supervisor.study.storage import load_study
from tests import faultkit

X = ParamSpec("x", "float", low=-4, high=0)
N = ParamSpec("n", "int", low=2, high=10, step=2)
OPT = ParamSpec("opt", "categorical", choices=("adam", 1, True))


def test_contains_checks_range_step_and_the_type_of_choices() -> None:
    assert warm_start.contains(X, -1.5) and not warm_start.contains(X, 0.5)
    assert warm_start.contains(N, 4) and not warm_start.contains(N, 5)
    assert not warm_start.contains(N, 12) and not warm_start.contains(N, "4")
    assert warm_start.contains(OPT, "adam") and warm_start.contains(OPT, 1)
    assert not warm_start.contains(OPT, 1.0), "1.0 is not the choice 1"
    assert not warm_start.contains(X, True), "a boolean is no number here"


def test_parameters_are_renamed_dropped_or_the_trial_left_out() -> None:
    lr = ParamSpec("lr", "float", low=1e-4, high=1.0, log=True)
    dropped: set[str] = set()
    params, why = warm_start._params(
        (lr,), {"learning_rate": 0.01, "old": 3}, {"learning_rate": "lr"}, dropped
    )
    assert params == {"lr": 0.01} and dropped == {"old"} and why == ""
    assert warm_start._params((lr,), {"x": 1}, {}, set()) == (None, "missing lr")
    assert warm_start._params((lr,), {"lr": 2.0}, {}, set()) == (None, "lr outside this space")


def _toy_exp(tmp_path: Path, extra: str = "", objective: str = "loss") -> space.Experiment:
    path = tmp_path / "new.yaml"
    path.write_text(
        f'study: new\nbenchmark: {{name: "{faultkit.TOY}"}}\nobjectives: [{objective}]\n'
        "params:\n  x: {type: float, low: -4, high: 0}\nbudget: {trials: 3}\n" + extra
    )
    return space.load(path)


def _old_study(benchmark: str = faultkit.TOY) -> optuna.Study:
    study = optuna.create_study()
    study.set_user_attr(attrs.BENCHMARK, benchmark)
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    for x in (-3.0, -1.0, 2.0):
        study.add_trial(
            create_trial(
                params={"x": x},
                distributions=dist,
                value=(x - 2) ** 2,
                user_attrs={attrs.METRICS: {"loss": (x - 2) ** 2, "score": -x}},
            )
        )
    return study


def test_a_study_of_another_objective_or_benchmark_is_refused(tmp_path: Path) -> None:
    exp = _toy_exp(tmp_path)
    fitted = warm_start.fit(exp, WarmSource("old"), _old_study(), "warm_start: old")
    assert len(fitted.trials) == 2 and fitted.left_out == {"x outside this space": 1}
    with pytest.raises(UserError, match="a run of benchmark 'other'"):
        warm_start.fit(exp, WarmSource("old"), _old_study("other"), "warm_start: old")
    other = _toy_exp(tmp_path, objective="train_seconds")
    with pytest.raises(UserError, match=r"a study of another objective .*measured loss"):
        warm_start.fit(other, WarmSource("old"), _old_study(), "warm_start: old")


def test_failures_of_the_configuration_come_too_and_those_of_that_runs_limits_do_not(
    tmp_path: Path,
) -> None:
    from supervisor.commands.status import read_status
    from supervisor.config.history import failed_by_model
    from supervisor.report.cost import outcome
    from supervisor.study.records import TrialRecord

    old = _old_study()
    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    for x, kind, error_type in (
        (-0.5, "model", "NonFiniteObjective"),  # diverged there: it will here
        (-0.6, "model", "TimeLimitExceeded"),  # that run's limit, not the configuration
        (-0.7, "interrupted", "Interrupted"),  # run again there: no news of its own
        (-0.8, "model", "WorkerDiedRepeatedly"),  # that run's nodes
        (3.0, "model", "RuntimeError"),  # outside this space
    ):
        attributes = {attrs.FAILURE: kind, attrs.ERROR_TYPE: error_type, attrs.ERROR: "e"}
        old.add_trial(
            create_trial(
                state=TrialState.FAIL, params={"x": x}, distributions=dist, user_attrs=attributes
            )
        )
    old.add_trial(create_trial(state=TrialState.FAIL))  # the sampler failed: no parameters
    fitted = warm_start.fit(_toy_exp(tmp_path), WarmSource("old"), old, "warm_start: old")
    assert fitted.failed == 1 and len(fitted.trials) == 3
    assert fitted.left_out == {"x outside this space": 2, "failed by a limit of that run": 2}
    assert fitted.line().startswith("3 trials from old, 1 of them failed there (left out:")
    (told,) = [t for t in fitted.trials if t.state == TrialState.FAIL]
    assert told.params == {"x": -0.5} and told.user_attrs[attrs.ERROR_TYPE] == "NonFiniteObjective"
    assert failed_by_model(told), "a sampler that avoids failures sees it"

    new = optuna.create_study()
    assert warm_start.apply(new, [fitted]) == 3
    status = read_status(new)
    assert status.failures == {"warm start": 1} and status.done == 0, "not this run's budget"
    assert status.warm == 2 and status.states == {"COMPLETE": 2, "FAIL": 1}
    assert all(outcome(TrialRecord.from_frozen(t)) is None for t in new.get_trials()), "no cost"
    from supervisor.report.campaign import Campaign
    from supervisor.report.summary import _what_where_how_long

    camp = Campaign.load(new)
    assert camp.failed == [], "the report's failure tables are this campaign's"
    rows = dict(_what_where_how_long(camp, Counter(t.state.name for t in camp.trials)))
    assert str(rows["warm start"]).startswith("3 from old (1 failed there)")


def test_the_section_is_checked_when_the_file_is_read(tmp_path: Path) -> None:
    exp = _toy_exp(tmp_path, "warm_start: [old, {run: runs/v1, rename: {lr: x}}]\n")
    assert exp.warm_start == (WarmSource("old"), WarmSource("runs/v1", {"lr": "x"}))
    for bad, message in (
        ("warm_start: 3\n", "expected a list of runs"),
        ("warm_start: [old, old]\n", "listed twice"),
        ("warm_start: [{run: a, rename: {lr: nope}}]\n", "'nope' is not a parameter"),
        ("warm_start: [{rename: {lr: x}}]\n", "missing 'run'"),
    ):
        with pytest.raises(SpaceError, match=message):
            _toy_exp(tmp_path, bad)


def test_a_search_starts_warm_from_an_earlier_run_once_and_spends_its_budget_on_new_trials(
    tmp_path: Path,
) -> None:
    old = faultkit.toy_space(tmp_path, 8, delay=0.0, epochs=1, study="old")
    assert faultkit.run_search(old, "--workers", "1").returncode == 0
    new = tmp_path / "new.yaml"
    new.write_text(
        old.read_text()
        .replace("study: old", "study: new")
        .replace("low: -4, high: 4", "low: -4, high: 0")
        .replace("trials: 8", "trials: 4")
    )
    earlier = load_study(faultkit.journal_url(old, "old"), "old").get_trials()
    inside = sum(1 for t in earlier if t.params["x"] <= 0)

    result = faultkit.run_search(new, "--workers", "1", "--warm-start", "old")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Warm start: {inside} trials from old" in result.stdout
    study = load_study(faultkit.journal_url(new, "new"), "new")
    warm = [t for t in study.get_trials() if attrs.WARM_START in t.user_attrs]
    assert len(warm) == inside and all(t.state == TrialState.COMPLETE for t in warm)
    assert {t.user_attrs[attrs.WARM_START].split("#")[0] for t in warm} == {"old"}
    assert sum(attrs.counts_toward_budget(t) for t in study.get_trials()) == 4

    # Resumed naming the same run by its directory: it is the run, not the name, told once.
    again = faultkit.run_search(new, "--workers", "1", "--warm-start", "runs/old", "--trials", "6")
    assert again.returncode == 0 and "Warm start" not in again.stdout
    study = load_study(faultkit.journal_url(new, "new"), "new")
    assert sum(attrs.WARM_START in t.user_attrs for t in study.get_trials()) == inside
    assert sum(attrs.counts_toward_budget(t) for t in study.get_trials()) == 6

    # The source moved away since: its trials are in, the resume needs it no more (it
    # was refused, exit 2, "no run found").
    (tmp_path / "runs" / "old").rename(tmp_path / "old-archived")
    moved = faultkit.run_search(new, "--workers", "1", "--warm-start", "old", "--trials", "7")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    study = load_study(faultkit.journal_url(new, "new"), "new")
    assert sum(attrs.WARM_START in t.user_attrs for t in study.get_trials()) == inside
    (tmp_path / "old-archived").rename(tmp_path / "runs" / "old")

    from supervisor.api import open_run

    (page,) = open_run(tmp_path / "runs" / "new").report(tmp_path / "new.html")
    html = Path(page).read_text()
    assert f"{inside} from old (told untrained, outside the budget)" in html
    assert "warm start: old#" in html


def test_a_warm_start_that_is_not_a_run_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    new = faultkit.toy_space(tmp_path, 3, delay=0.0, epochs=1, study="new")
    result = faultkit.run_search(new, "--warm-start", "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nowhere: no run found" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_of_the_space_file_that_is_no_run_is_refused_where_the_file_names_it(
    tmp_path: Path,
) -> None:
    """The README: bad input is one line naming the file, line and key. A warm-start run
    the space file lists is looked up when the campaign opens; its refusal said only
    "warm_start: lr-sweep: no run found", not which file or entry."""
    new = faultkit.toy_space(tmp_path, 3, delay=0.0, epochs=1, study="new")
    with new.open("a") as f:
        f.write("warm_start:\n  - {run: nowhere, rename: {lr: x}}\n")
    result = faultkit.run_search(new, "--dry-run")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    line = len(new.read_text().splitlines())
    assert f"new.yaml:{line}:6: warm_start[0].run: nowhere: no run found" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sampler", ["nsgaii", "nsgaiii"])
def test_nsga_breeds_its_first_new_trials_from_the_warm_start(
    tmp_path: Path, sampler: str
) -> None:
    """NSGA-II and -III count a trial in a population by its generation tag: a warm
    start's trials had none, were in no population, and the first population of new
    trials was drawn at random whatever they had measured. They are its first generation
    now: with a population's worth of them, the first new trial is bred from them."""
    from supervisor.config.samplers import make_sampler

    options = "{population_size: 4}"
    exp = _toy_exp(tmp_path, extra=f"sampler: {{name: {sampler}, options: {options}}}\n")
    old = optuna.create_study()
    old.set_user_attr(attrs.BENCHMARK, faultkit.TOY)
    for x in (-3.5, -3.0, -2.0, -1.0, -0.5):
        old.add_trial(
            create_trial(
                params={"x": x},
                distributions={"x": X.distribution()},
                value=(x + 1) ** 2,
                user_attrs={attrs.METRICS: {"loss": (x + 1) ** 2}},
            )
        )
    fitted = warm_start.fit(exp, WarmSource("old"), old, "warm_start: old")
    study = optuna.create_study(sampler=make_sampler(exp.sampler, exp.sampler_options, 1))
    assert warm_start.apply(study, [fitted]) == 5
    trial = study.ask()
    trial.suggest_float("x", -4, 0)
    ga: Any = study.sampler
    assert study._storage.get_trial(trial._trial_id).system_attrs[ga._get_generation_key()] == 1
    cached = study._storage.get_study_system_attrs(study._study_id)
    parents = set(cached[ga._get_parent_cache_key_prefix() + "1"])
    assert parents and parents <= {t._trial_id for t in study.get_trials()[:5]}
