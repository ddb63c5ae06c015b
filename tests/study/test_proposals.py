"""Proposals computed beside the driver (``supervisor.study.proposer`` and
``supervisor.study.proposals``): used by the real driver, modelled as pending while
unused, never a trial unless used, and a proposer that dies costs nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from distributed import Client
from optuna.trial import TrialState

import supervisor.rundir as rundir
from supervisor.config import space
from supervisor.config.params import suggest
from supervisor.errors import UserError
from supervisor.study import proposals as proposals_module
from supervisor.study.driver import Driver
from supervisor.study.open_study import open_campaign_study
from supervisor.study.proposals import FedSampler, Proposals, proposer, supported
from supervisor.study.proposer import FIRST_ID, Proposal, propose

TOY = "tests.toy_benchmark:ToyBenchmark"
STARTUP = "n_startup_trials: 5"
PARAMS = "  x: {type: float, low: -4, high: 4}\n  y: {type: float, low: -4, high: 4}"


def experiment(
    tmp_path: Path, trials: int, sampler: str = "tpe", delay: float = 0.0
) -> space.Experiment:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}", options: {{delay: {delay}}}}}\n'
        f"objectives: [loss]\nparams:\n{PARAMS}\n"
        f"budget: {{trials: {trials}, epochs: 1}}\nseed: 3\n"
        f"sampler: {{name: {sampler}, options: {{{STARTUP if sampler != 'random' else ''}}}}}\n"
    )
    return space.load(path)


def campaign(
    tmp_path: Path, trials: int, delay: float = 0.0, sampler: str = "tpe"
) -> tuple[space.Experiment, optuna.Study, str]:
    exp = experiment(tmp_path, trials, sampler, delay=delay)
    url = rundir.journal_url(tmp_path)
    return exp, open_campaign_study(exp, url), url


def finish(study: optuna.Study, exp: space.Experiment, n: int) -> None:
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, exp.params)
        study.tell(trial, (params["x"] - 2.0) ** 2 + params["y"] ** 2)


def wait_for(proposals: Proposals, seconds: float = 60.0) -> Proposal:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = proposals.take()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError("no proposal came")


def test_the_proposer_reads_results_told_after_it_started(tmp_path: Path) -> None:
    exp, study, url = campaign(tmp_path, 100)
    proposals = Proposals(url, exp)
    try:
        assert proposals.take() is None  # nothing finished: the sampler's start-up
        finish(study, exp, 8)  # past the 5 start-up trials, told after the process started
        found = wait_for(proposals)
        assert set(found.params) == {"x", "y"} and found.id > FIRST_ID
        assert all(-4 <= v <= 4 for v in found.params.values())
        assert len(study.trials) == 8  # a proposal is not a trial
    finally:
        proposals.close()
    assert not proposals.process.is_alive()


def test_a_proposal_whose_configuration_became_a_trial_meanwhile_is_dropped(
    tmp_path: Path,
) -> None:
    """The proposer read the study before the driver's latest trials; the driver's own
    sampler may have proposed the same configuration meanwhile (the same posterior
    serves both): taking it would train, or tell, that configuration twice."""
    exp, _, url = campaign(tmp_path, 100)
    proposals = Proposals(url, exp)
    try:
        assert proposals.wait_started(120)
        now = time.monotonic()
        for i, x in enumerate((1.0, 2.0, 3.0)):
            proposals.ready.append((now, Proposal(FIRST_ID + i, {}, {"x": x, "y": 0.0}, 0.0)))
        found = proposals.take(lambda params: params["x"] < 2.5)
        assert found is not None and found.params["x"] == 3.0
        assert proposals.repeats == 2 and not proposals.ready
    finally:
        proposals.close()


def test_unused_proposals_are_modelled_as_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, study, _ = campaign(tmp_path, 100)
    finish(study, exp, 20)
    sampler = study.sampler
    seen: list[int] = []
    sample = optuna.samplers.TPESampler.sample_relative

    def spy(self: Any, view: Any, trial: Any, search_space: Any) -> Any:
        """What TPE itself is handed (inside the bounded history)."""
        seen.append(len(view.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))
        return sample(self, view, trial, search_space)

    monkeypatch.setattr(optuna.samplers.TPESampler, "sample_relative", spy)
    first = propose(study, sampler, FIRST_ID + 1, [])
    outstanding = [proposer_pending(FIRST_ID + 1, first)]
    second = propose(study, sampler, FIRST_ID + 2, outstanding)
    assert seen == [0, 1]  # the unused proposal is one of the pending trials
    assert first[1] != second[1]
    assert len(study.trials) == 20 and not sampler.extra_pending  # type: ignore[union-attr]


def proposer_pending(number: int, proposal: tuple[dict[str, Any], dict[str, Any]]) -> Any:
    from supervisor.study.proposer import pending

    return pending(number, proposal[1], proposal[0])


def started_first(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the driver once its proposer has opened the study (toy trials take
    milliseconds: the campaign could end before a process has started)."""
    init = Proposals.__init__

    def init_and_wait(self: Proposals, *args: Any) -> None:
        init(self, *args)
        assert self.wait_started(120), "the proposer did not start"

    monkeypatch.setattr(Proposals, "__init__", init_and_wait)
    return driver.run()


@pytest.mark.parametrize("sampler", ["tpe", "turbo"])
def test_the_driver_uses_proposals_and_runs_exactly_the_budget(
    tmp_path: Path, threads_client: Client, monkeypatch: pytest.MonkeyPatch, sampler: str
) -> None:
    # ~1 s of trials; turbo's first kernel fit takes a while: ~5 s
    delay = 0.05 if sampler == "tpe" else 0.25
    exp, study, url = campaign(tmp_path, 40, delay=delay, sampler=sampler)
    driver = Driver(exp, study, threads_client, slots=2, storage_url=url, proposer=True)
    summary = started_first(driver, monkeypatch)
    assert summary.finished == 40 and summary.stopped_by == "budget"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 40
    assert driver.proposals is not None and driver.proposals.taken > 0
    assert not driver.proposals.process.is_alive()
    assert study.sampler is not None and not isinstance(study.sampler, FedSampler)
    keys = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(keys) == 40  # no configuration trained twice


def test_a_proposer_that_dies_costs_no_trial(
    tmp_path: Path, threads_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, study, url = campaign(tmp_path, 40, delay=0.05)  # the campaign lasts ~1 s
    take = Proposals.take

    def take_then_kill(self: Proposals, tried: Any = None) -> Proposal | None:
        found = take(self, tried)
        if self.taken == 5 and self.process.is_alive():
            os.kill(self.process.pid or 0, signal.SIGKILL)
            self.process.join()
        return found

    monkeypatch.setattr(Proposals, "take", take_then_kill)
    driver = Driver(exp, study, threads_client, slots=2, storage_url=url, proposer=True)
    summary = started_first(driver, monkeypatch)
    assert summary.finished == 40 and summary.stopped_by == "budget"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 40
    assert driver.proposals is not None and driver.proposals.taken >= 5
    assert not driver.proposals.alive  # found dead; the sampler proposed the rest


def test_a_proposal_of_a_stale_space_gives_no_foreign_parameter(tmp_path: Path) -> None:
    """The feed skips the space inference (its cost is what the proposer saves): a
    proposal made for a space the study no longer has fills only what both share; the
    other parameters are drawn by the sampler, none is invented."""
    exp, study, _ = campaign(tmp_path, 100)
    finish(study, exp, 8)
    stale: dict[str, Any] = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    stale["z"] = optuna.distributions.FloatDistribution(0, 1)

    class Feed:
        def take(self, tried: Any = None) -> Proposal:
            return Proposal(FIRST_ID, stale, {"x": 1.5, "z": 0.5}, 0.0)

    study.sampler = FedSampler(study.sampler, Feed())  # type: ignore[arg-type]
    trial = study.ask()
    params = suggest(trial, exp.params)
    assert set(params) == {"x", "y"} and params["x"] == 1.5 and -4 <= params["y"] <= 4
    assert set(study.trials[-1].params) == {"x", "y"}


def test_where_a_proposer_runs(tmp_path: Path) -> None:
    exp, study, url = campaign(tmp_path, 10)
    assert supported(study, url) is None
    assert "memory" in (supported(study, None) or "")
    random_exp = experiment(tmp_path, 10, sampler="random")
    random_study = open_campaign_study(random_exp, rundir.journal_url(tmp_path / "r"))
    assert "bounded history" in (supported(random_study, url) or "")
    refused = pytest.raises(UserError, match="proposer: not for this campaign")
    with refused, proposer(random_study, random_exp, url, slots=1000, wanted=True):
        pass
    for slots, wanted in ((proposals_module.PROPOSER_SLOTS - 1, None), (10_000, False)):
        with proposer(study, exp, url, slots=slots, wanted=wanted) as found:
            assert found is None and not isinstance(study.sampler, FedSampler)


def test_the_proposer_ends_quietly_when_its_driver_is_gone(tmp_path: Path) -> None:
    """A driver killed with SIGKILL closes its end of the pipe: the proposer must end,
    not stay behind on the login node."""
    exp, study, url = campaign(tmp_path, 100)
    finish(study, exp, 8)
    proposals = Proposals(url, exp)
    assert proposals.wait_started(120)
    wait_for(proposals)
    proposals._conn.close()  # what the driver's death does to the pipe
    proposals.process.join(30)
    assert proposals.process.exitcode == 0
