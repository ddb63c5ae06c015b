"""Training ensemble members after a kill -9: every (configuration, seed) trains once and
the ensemble has the size asked for. The kill is simulated in this process: the driver
of the member study asks its queued members under a driver id whose process is gone,
then stops, as a driver killed right after it handed them to its workers leaves them."""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from supervisor.clusters.handle import ClusterHandle
from supervisor.config import space
from supervisor.ensemble import build as build_mod
from supervisor.ensemble import members as members_mod
from supervisor.ensemble.aggregate import Built
from supervisor.study import attrs, retry
from supervisor.study.driver import Driver
from supervisor.study.events import Silent
from supervisor.study.open_study import open_campaign_study
from supervisor.study.storage import load_study, open_storage

DEAD = f"{socket.gethostname()}:{2**22 + 12345}:dead"  # above any pid_max: never alive


class Killed(Exception):
    pass


class Lines(Silent):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)


def killed_run(self: Driver) -> None:
    """The member driver's run as a kill -9 leaves it: its queued members RUNNING under a
    dead driver (whose lease was fresh), none finished."""
    self.study.set_user_attr(attrs.HEARTBEAT_PREFIX + DEAD, time.time())
    while self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        self.study.ask().set_user_attr(attrs.DRIVER, DEAD)
    raise Killed


@pytest.fixture
def campaign(tmp_path: Path, threads_client: Any) -> dict[str, Any]:
    """A finished 2-trial search that keeps its outputs, with ``ensemble: seeds``."""
    path = tmp_path / "es.yaml"
    path.write_text(
        'study: es\nbenchmark: {name: "tests.toy_classifier:ToyClassifier"}\n'
        "objectives: [val_nll]\n"
        "params:\n  lr: {type: float, low: 0.01, high: 1.0, log: true}\n"
        "budget: {trials: 2, epochs: 2}\nsampler: random\nseed: 5\n"
        "ensemble: {select: seeds, size: 3}\n"
    )
    exp = space.load(path)
    storage = f"journal:{tmp_path / 'journal.log'}"
    run_dir = tmp_path / "runs" / "es"
    study = open_campaign_study(exp, storage)
    Driver(exp, study, threads_client, slots=2, run_dir=str(run_dir)).run()
    handle = ClusterHandle(client=threads_client, cluster=None, slots=2, threads=1, description="")
    return {"exp": exp, "study": study, "storage": storage, "run_dir": run_dir, "handle": handle}


def ensemble(campaign: dict[str, Any], size: int, display: Any = None) -> Built:
    exp = campaign["exp"]
    return build_mod.build(
        exp,
        replace(exp.ensemble, size=size),
        campaign["study"],
        campaign["storage"],
        campaign["run_dir"],
        lambda: contextlib.nullcontext(campaign["handle"]),
        display or Silent(),
    )


def member_trials(campaign: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    return load_study(campaign["storage"], "es.ensemble").get_trials(deepcopy=False)


def trained(campaign: dict[str, Any]) -> Counter[tuple[Any, Any]]:
    """How many times each (configuration, seed) trained to the end."""
    return Counter(
        (t.user_attrs[attrs.MEMBER_OF], t.user_attrs[attrs.SEED])
        for t in member_trials(campaign)
        if t.state == TrialState.COMPLETE
    )


@pytest.mark.parametrize("kills", [1, 2])
def test_a_resume_after_kills_trains_each_member_once(
    campaign: dict[str, Any], monkeypatch: pytest.MonkeyPatch, kills: int
) -> None:
    # Killed while training the 2 missing seeds, and with ``kills`` 2, again on resuming.
    for _ in range(kills):
        with monkeypatch.context() as m:
            m.setattr(Driver, "run", killed_run)
            with pytest.raises(Killed):
                ensemble(campaign, 3)
    assert len(ensemble(campaign, 3).members) == 3
    assert sorted(trained(campaign).values()) == [1, 1]
    # A larger ensemble later: only its 2 new seeds train, and it has all 5 members.
    display = Lines()
    built = ensemble(campaign, 5, display)
    assert len(built.members) == 5 and built.failed == []
    counts = trained(campaign)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts
    left = [t.number for t in member_trials(campaign) if not t.state.is_finished()]
    assert left == []
    assert "Ensemble: training 2 member(s); 1 reused from the search, 2 trained before" in (
        display.lines
    )


def test_queued_copies_of_trained_members_are_ended_unrun(campaign: dict[str, Any]) -> None:
    """What an earlier version left behind: WAITING copies of members already trained,
    queued before the members a larger ensemble adds; they are not trained again."""
    ensemble(campaign, 3)
    study = optuna.load_study(study_name="es.ensemble", storage=open_storage(campaign["storage"]))
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        copy = retry.rerun_attrs(t.user_attrs, t.number, "stopped")  # as recovery queues
        study.enqueue_trial(t.params, user_attrs=copy, skip_if_exists=False)
    built = ensemble(campaign, 5)
    assert len(built.members) == 5
    assert set(trained(campaign).values()) == {1} and len(trained(campaign)) == 4
    stale = [t for t in member_trials(campaign) if t.state == TrialState.FAIL]
    assert len(stale) == 2 and {t.user_attrs[attrs.FAILURE] for t in stale} == {"surplus"}
    assert all(attrs.DURATION_S not in t.user_attrs for t in stale)  # never ran


def test_members_running_under_a_dead_driver_are_queued_once(campaign: dict[str, Any]) -> None:
    """The members step counts what recovery re-queues before it queues what is missing."""
    exp = campaign["exp"]
    source = members_mod.ranked(campaign["study"], maximize=False)[0]
    want = members_mod.wanted(exp, [source], 3)[1:]  # the 2 seeds the search did not train
    args = (
        {source.number: source},
        campaign["storage"],
        campaign["run_dir"],
        campaign["handle"],
        Silent(),
    )
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Driver, "run", killed_run)
        with pytest.raises(Killed):
            members_mod.train_missing(exp, want, *args)
    members_mod.train_missing(exp, want, *args)
    states = Counter(
        (t.state.name, t.user_attrs.get(attrs.FAILURE)) for t in member_trials(campaign)
    )
    assert states == {("FAIL", "infrastructure"): 2, ("COMPLETE", None): 2}


def test_the_searchs_early_stop_rules_do_not_cut_the_members_short(
    campaign: dict[str, Any],
) -> None:
    """Members repeat configurations: none betters the search's best (patience) and each
    may meet its target; the members train to their count all the same."""
    exp = campaign["exp"]
    best = min(t.value for t in campaign["study"].trials if t.value is not None)
    strict = replace(exp.budget, patience=1, target=(("val_nll", best),))
    built = ensemble({**campaign, "exp": replace(exp, budget=strict)}, size=5)
    assert len(built.members) == 5  # the search's best trial and four trained seeds
    assert sum(trained(campaign).values()) == 4  # on 2 slots: beyond the first results


def test_two_ensembles_built_at_once_queue_each_member_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two drivers of one run finish together and both build its ensemble: each
    planned the member queue before the other wrote it, and every member was queued (and
    trained) twice, while others of the budget were not."""
    import threading

    from optuna.trial import create_trial

    from tests.study.test_driver import experiment

    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 2, epochs: 1}")
    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    source = create_trial(params={"x": 1.0}, distributions=dist, value=1.0)
    source.number = 0
    url = f"journal:{tmp_path / 'j.log'}"
    optuna.create_study(study_name="m", storage=open_storage(url))
    want = [members_mod.Wanted(0, seed) for seed in (11, 12, 13)]
    plan = members_mod._plan_queue

    def slow(study: optuna.Study, wanted: set[Any]) -> set[Any]:
        found = plan(study, wanted)
        time.sleep(0.5)  # between reading the queue and adding to it
        return found

    monkeypatch.setattr(members_mod, "_plan_queue", slow)

    def build() -> None:
        study = optuna.load_study(study_name="m", storage=open_storage(url))
        members_mod.queue_missing(study, exp, want, {0: source})

    builders = [threading.Thread(target=build) for _ in range(2)]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join(60)
    queued = load_study(url, "m").get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs[attrs.SEED] for t in queued) == [11, 12, 13]


def test_members_that_find_the_disk_full_build_no_ensemble(campaign: dict[str, Any]) -> None:
    """Members whose outputs could not be written (their run directory's disk full) went
    on training, the ensemble built of fewer members; the training stops at the first
    and the command says the disk's error (exit 1)."""
    import subprocess

    from supervisor.study.journal_file import StorageError

    folder = campaign["run_dir"] / "ensemble"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr!r}): needs root")
    try:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(StorageError, match=r"disk is full: OSError: \[Errno 28\]") as caught:
            ensemble(campaign, size=3)
        assert caught.value.exit_code == 1
        assert "free space, then build the ensemble again" in str(caught.value)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
