"""The driver's policies on their own: re-runs after worker deaths, fail fast, exit codes,
and the summary line a user reads."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from supervisor.commands.summary import print_summary
from supervisor.study import attrs, retry
from supervisor.study.failfast import FailFast
from supervisor.study.outcomes import Summary
from supervisor.study.recovery import Recovered
from supervisor.study.signals import exit_code

# -- worker deaths --------------------------------------------------------------------


def chain_of_deaths(causes: list[retry.Cause]) -> dict[str, object]:
    """The user attributes of the trial that runs after these deaths of its chain."""
    user_attrs: dict[str, object] = {}
    for n, cause in enumerate(causes):
        user_attrs = retry.rerun_attrs(user_attrs, n, cause)
    return user_attrs


def test_a_trial_only_queued_on_a_dead_worker_keeps_its_attempts() -> None:
    queued = chain_of_deaths(["queued", "queued"])
    assert queued[attrs.ATTEMPT] == 1 and queued[attrs.UNSTARTED] == 2
    assert queued[attrs.RETRY_OF] == 0, "the chain keeps its first trial (checkpoints, seed)"
    # Two deaths while it ran: the third that it runs through is one too many.
    ran = chain_of_deaths(["queued", "ran", "queued", "ran"])
    assert ran[attrs.ATTEMPT] == 3 and ran[attrs.UNSTARTED] == 2
    assert retry.blame(ran, started=False, max_attempts=3, error="e") is None
    message = retry.blame(ran, started=True, max_attempts=3, error="KilledWorker: x")
    assert message == "its worker died on all 3 attempts; last: KilledWorker: x"


def test_interruptions_and_lost_drivers_never_count_as_attempts() -> None:
    after = chain_of_deaths(["stopped", "stopped", "stopped", "ran"])
    assert after[attrs.ATTEMPT] == 2 and attrs.UNSTARTED not in after


def test_a_trial_that_kills_its_worker_before_announcing_itself_is_blamed_in_the_end() -> None:
    """Its start never reaches the driver, so each death looks like a queued one; the
    chain is still blamed after twice the attempts rather than run forever."""
    user_attrs: dict[str, object] = {}
    for n in range(retry.UNSTARTED_FACTOR * 3 - 1):
        assert retry.blame(user_attrs, started=False, max_attempts=3, error="e") is None
        user_attrs = retry.rerun_attrs(user_attrs, n, "queued")
    message = retry.blame(user_attrs, started=False, max_attempts=3, error="e")
    assert message is not None and "died 6 times (6 before its start" in message


def test_ensemble_members_keep_their_seed_when_run_again() -> None:
    first = {attrs.SEED: 7, attrs.MEMBER_OF: 3, "worker": "tcp://x"}
    rerun = retry.rerun_attrs(first, 12, "ran")
    assert rerun[attrs.SEED] == 7 and rerun[attrs.MEMBER_OF] == 3 and "worker" not in rerun


# -- fail fast ------------------------------------------------------------------------

X = FloatDistribution(-4, 4)
OPT = CategoricalDistribution(["adam", "sgd"])
ONE = CategoricalDistribution(["only"])


def test_the_same_error_in_the_first_k_trials_stops_the_campaign() -> None:
    check = FailFast(3)
    dists = {"x": X, "fixed": ONE}
    err = "AttributeError: 'Model' object has no attribute 'fit'"
    assert check.failure({"x": 0.1, "fixed": "only"}, dists, err) is None
    assert check.failure({"x": 0.2, "fixed": "only"}, dists, err) is None
    stop = check.failure({"x": 0.3, "fixed": "only"}, dists, err)
    assert stop == f"the first 3 trials all failed with {err}"


def test_a_failing_region_is_data_not_a_stop() -> None:
    check = FailFast(3)
    dists = {"x": X, "opt": OPT}
    for x in (0.1, 0.2, 0.3, 0.4):  # all with sgd: maybe sgd is what fails
        assert check.failure({"x": x, "opt": "sgd"}, dists, "E: diverged") is None
    # The same error with the other optimizer too: the model itself is broken.
    assert check.failure({"x": 0.5, "opt": "adam"}, dists, "E: diverged") is not None

    mixed = FailFast(3)
    for message in ("E: a", "E: a", "E: b", "E: a"):  # errors that differ are data
        assert mixed.failure({"x": 0.1}, {"x": X}, message) is None

    after_success = FailFast(3)
    after_success.success()
    for _ in range(5):
        assert after_success.failure({"x": 0.1}, {"x": X}, "E: a") is None

    assert FailFast(0).failure({"x": 0.1}, {"x": X}, "E: a") is None, "0 turns it off"


def test_only_a_training_that_diverged_after_a_finite_epoch_shows_the_code_runs() -> None:
    from supervisor.study.failfast import diverged_after_training

    nan = float("nan")
    trained = [{"epoch": 0.0, "loss": 0.7}, {"epoch": 1.0, "loss": nan}]
    assert diverged_after_training("NonFiniteObjective", trained, ["loss"])
    assert diverged_after_training("NonFiniteObjective", trained, ["score", "loss"])
    assert not diverged_after_training("NonFiniteObjective", trained, ["score"]), "not it"
    from_the_start = [{"epoch": 0.0, "loss": nan}, {"epoch": 1.0, "loss": float("inf")}]
    assert not diverged_after_training("NonFiniteObjective", from_the_start, ["loss"])
    assert not diverged_after_training("NonFiniteObjective", [], ["loss"]), "no epochs"
    assert not diverged_after_training("RuntimeError", trained, ["loss"]), "a crash is code"
    within_the_first_epoch = [{"epoch": 0.0, "loss": nan, "diverged_after_steps": 12.0}]
    assert diverged_after_training("NonFiniteObjective", within_the_first_epoch, ["loss"])
    at_the_first_step = [{"epoch": 0.0, "loss": nan, "diverged_after_steps": 0.0}]
    assert not diverged_after_training("NonFiniteObjective", at_the_first_step, ["loss"])


# -- how a run ends -------------------------------------------------------------------


def summary(stopped_by: str, finished: int = 4, **extra: object) -> Summary:
    return Summary(
        requested=4,
        finished=finished,
        stopped_by=stopped_by,  # type: ignore[arg-type]
        elapsed=1.0,
        recovered=Recovered([], 0),
        **extra,  # type: ignore[arg-type]
    )


def test_exit_codes_say_how_the_run_ended() -> None:
    assert exit_code("SIGINT") == 130 and exit_code("SIGTERM") == 143
    assert summary("budget").exit_code == 0 and summary("timeout", 2).exit_code == 0
    assert summary("interrupt", 2).exit_code == 130
    assert summary("interrupt", 2, signal="SIGTERM").exit_code == 143
    assert summary("interrupt", 2, signal="SIGUSR1").exit_code == exit_code("SIGUSR1")
    assert summary("failing", 0, failure="E: x").exit_code == 1
    assert summary("budget", 3).exit_code == 1, "never claims a budget it did not reach"


def test_the_summary_never_says_budget_reached_short_of_the_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_summary(summary("budget", 3), None)
    out = capsys.readouterr().out
    assert "budget reached" not in out and "Finished trials: 3 of 4" in out
    print_summary(summary("interrupt", 2, signal="SIGTERM"), None)
    out = capsys.readouterr().out
    assert "SIGTERM received" in out and "Run the same command again" in out
    print_summary(summary("failing", 0, failure="the first 5 trials all failed with E: x"), None)
    out = capsys.readouterr().out
    assert out.count("E: x") == 1 and "Stopped: every first trial failed" in out


def test_the_summary_of_a_campaign_of_days_reads_in_days(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three days of search ended 'Stopped: budget reached after 259203.4 s'."""
    done = summary("budget")
    done.elapsed = 3 * 86400 + 3.4
    print_summary(done, None)
    assert "Stopped: budget reached after 3 d 00 h\n" in capsys.readouterr().out


def test_blind_duplicates_do_not_count_toward_the_budget() -> None:
    study = optuna.create_study()
    for known in (True, False, None):
        trial = study.ask({"x": X})
        if known is not None:
            trial.set_user_attr(attrs.DUPLICATE_OF, 0)
            trial.set_user_attr(attrs.DUPLICATE_KNOWN, known)
        study.tell(trial, 1.0)
    assert [attrs.counts_toward_budget(t) for t in study.trials] == [True, False, True]
