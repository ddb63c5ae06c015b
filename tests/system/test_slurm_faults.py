"""Faults of a batch machine on the 4-node test Slurm (tests/system/slurm.sh): a node dies
mid-campaign, a worker job is requeued, a node is drained, worker jobs reach their
walltime. Each campaign ends with exactly its budget, no trial lost or counted twice, and
every failure recorded as the infrastructure's (or an interruption) with its cause.

Campaigns that wreck a node keep their jobs on the FOREGROUND nodes and run one at a time;
the walltime campaign runs on the BACKGROUND node beside them (conftest.py starts it first).
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from supervisor.study import attrs
from tests.system import slurmkit
from tests.system.slurmkit import FOREGROUND, WALLTIME_BUDGET, Campaign

pytestmark = [pytest.mark.slurm, pytest.mark.faults]
ON = "|".join(FOREGROUND)
TRIAL_S = 4.5  # 3 epochs of 1.5 s: long enough to hit one mid-trial


def test_a_node_killed_mid_trial_loses_nothing(tmp_path: Path, slurm_nodes: None) -> None:
    """kill -9 a node's slurmd, its job steps and its workers while a trial runs there: the
    trial is an infrastructure failure with its cause, runs again on another node, and the
    campaign ends with its budget."""
    budget = 12
    campaign = Campaign.toy(
        tmp_path, "killed-node", ON, trials=budget, jobs=3, delay=1.5, epochs=3
    )
    node = ""
    try:
        campaign.start()
        victim = campaign.wait_for_trial(slurmkit.running_first_attempt(FOREGROUND, 2.0, TRIAL_S))
        node = victim.user_attrs[attrs.HOSTNAME]
        killed_at = time.time()
        killed = slurmkit.kill_node(node)
        # The node reboots once the driver has recorded the loss: Slurm may take it back.
        campaign.wait_for_trial(lambda t, _: t.number == victim.number and t.state.is_finished())
        back_at = time.time()
        slurmkit.restart_node(node)
        study = campaign.finish(timeout=180)
    finally:
        campaign.stop()
        if node:
            slurmkit.restart_node(node)
    print(f"\nkilled {node} ({len(killed)} processes) during trial {victim.number}")
    print(campaign.output()[-1500:])
    slurmkit.exact(study, budget, "a Slurm node killed (slurmd, steps, workers)", 1)
    lost = study.trials[victim.number]
    assert lost.state == TrialState.FAIL, lost
    assert lost.user_attrs[attrs.FAILURE] == "infrastructure"
    assert lost.user_attrs[attrs.WORKER] in lost.user_attrs[attrs.ERROR]  # the dead worker
    rerun = slurmkit.completed_rerun(study, lost)
    assert rerun.user_attrs[attrs.HOSTNAME] != node or rerun.user_attrs[attrs.STARTED] > back_at
    dead = [t for t in study.trials if killed_at < t.user_attrs.get(attrs.STARTED, 0) < back_at]
    assert all(t.user_attrs[attrs.HOSTNAME] != node for t in dead)


def test_a_requeued_worker_job_loses_nothing(tmp_path: Path, slurm_nodes: None) -> None:
    """`scontrol requeue` of a worker job while a trial runs in it: Slurm ends the job and
    queues it again; the trial is recorded with its cause and runs again elsewhere."""
    budget = 12
    campaign = Campaign.toy(tmp_path, "requeued", ON, trials=budget, jobs=3, delay=1.5, epochs=3)
    try:
        campaign.start()
        victim = campaign.wait_for_trial(slurmkit.running_first_attempt(FOREGROUND, 2.0, TRIAL_S))
        node = victim.user_attrs[attrs.HOSTNAME]
        job = campaign.job_of(victim.user_attrs[attrs.WORKER])
        slurmkit.requeue(job)
        study = campaign.finish(timeout=180)
        again = slurmkit.restarts(job)
    finally:
        campaign.stop()
    print(
        f"\nrequeued job {job} on {node} during trial {victim.number}: {campaign.watch.jobs[job]}"
    )
    print(campaign.output()[-1500:])
    slurmkit.exact(study, budget, "scontrol requeue of a worker job", 1)
    assert again == 1, again  # Slurm did requeue it
    hit = study.trials[victim.number]
    assert hit.state == TrialState.FAIL and hit.user_attrs[attrs.FAILURE] == "infrastructure"
    assert hit.user_attrs[attrs.WORKER] in hit.user_attrs[attrs.ERROR]  # the requeued worker
    slurmkit.completed_rerun(study, hit)


def test_a_drained_node_finishes_its_jobs_and_gets_no_new_ones(
    tmp_path: Path, slurm_nodes: None
) -> None:
    """`scontrol update State=DRAIN` of a node running a worker, with 1-minute walltimes:
    the trial running there completes (draining kills nothing), the node's job reaches its
    end, and the jobs replacing it run on the other nodes."""
    # 2-s trials on 2 workers: ~90 s, so the campaign outlives the drained node's job (its
    # lifetime is < 1 min from its start) by ~30 s and trials start after it is gone.
    budget = 90
    campaign = Campaign.toy(
        tmp_path, "drained", ON, trials=budget, jobs=2, delay=1.0, epochs=2, walltime="00:01:00"
    )
    node = ""
    try:
        campaign.start()
        victim = campaign.wait_for_trial(slurmkit.running_first_attempt(FOREGROUND, 0.5, 2.0))
        node = victim.user_attrs[attrs.HOSTNAME]
        drained_at = time.time()
        slurmkit.drain(node, "supervisor-test:drained-mid-campaign")
        study = campaign.finish(timeout=180)
    finally:
        campaign.stop()
        if node:
            slurmkit.resume_when_stuck(node)
    jobs = campaign.watch.jobs.values()
    print(f"\ndrained {node} during trial {victim.number}; jobs: {list(jobs)}")
    print(campaign.output()[-2500:])
    slurmkit.exact(study, budget, "a Slurm node drained (1-min walltimes)", 1)
    assert study.trials[victim.number].state == TrialState.COMPLETE
    assert study.trials[victim.number].user_attrs[attrs.HOSTNAME] == node
    # squeue is polled: a job seen running up to a poll (and a squeue call) late may have
    # started on the node just before the drain, and one seen last may have lived that long.
    margin = 2.0
    new = [j for j in jobs if j.first_running and j.first_running > drained_at + margin]
    assert new and all(j.node != node for j in new), new
    on_node = [j for j in jobs if j.node == node and j.first_running]
    gone = max(j.last_seen for j in on_node)
    later = [t for t in study.trials if t.user_attrs.get(attrs.STARTED, 0) > gone + margin]
    assert later and all(t.user_attrs[attrs.HOSTNAME] != node for t in later)


def busy_share(study: optuna.Study, slots: int) -> float:
    """Time in trials that completed over the campaign's span x ``slots`` (for information:
    a replacement asked for ahead runs beside the job it replaces, so it may exceed 1)."""
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    first = min(t.user_attrs[attrs.STARTED] for t in done)
    last = max(t.user_attrs[attrs.FINISHED] for t in done)
    return sum(t.user_attrs[attrs.DURATION_S] for t in done) / (slots * (last - first))


def test_workers_retiring_at_1_minute_walltimes_lose_nothing(
    expiring_walltimes: dict[str, Campaign],
) -> None:
    """Worker jobs of 1 minute retire before their walltime, each replaced by a new job
    (asked for ahead): about two changeovers per job in the campaign."""
    campaign = expiring_walltimes["retiring"]
    study = campaign.finish(timeout=300)
    jobs = campaign.watch.jobs
    ended = len(jobs) - 2
    print(f"\n{len(jobs)} jobs, busy {busy_share(study, 2):.1%}: {list(jobs.values())}")
    print(campaign.output()[-1500:])
    slurmkit.exact(study, WALLTIME_BUDGET, "worker jobs retiring at 1-minute walltimes", ended)
    workers = {t.user_attrs[attrs.WORKER] for t in study.trials if t.state == TrialState.COMPLETE}
    assert ended >= 2 and len(workers) >= 4, (jobs, workers)


def test_workers_killed_by_slurm_at_their_walltime_lose_nothing(
    expiring_walltimes: dict[str, Campaign],
) -> None:
    """With no lifetime, Slurm kills each 1-minute job at its walltime, mid-trial: the
    trials it ran are infrastructure failures with their cause, run again elsewhere."""
    campaign = expiring_walltimes["killed"]
    study = campaign.finish(timeout=300)
    jobs = campaign.watch.jobs
    ended = len(jobs) - 2
    print(f"\n{len(jobs)} jobs, busy {busy_share(study, 2):.1%}: {list(jobs.values())}")
    print(campaign.output()[-1500:])
    slurmkit.exact(study, WALLTIME_BUDGET, "worker jobs killed at 1-minute walltimes", ended)
    assert ended >= 2, jobs
    for t in slurmkit.failures(study):
        assert t.user_attrs[attrs.FAILURE] == "infrastructure", t.user_attrs
        slurmkit.completed_rerun(study, t)


def test_a_trial_longer_than_its_workers_live_ends_as_their_failure_not_a_loop(
    tmp_path: Path, slurm_nodes: None
) -> None:
    """A 20-s trial (no epoch checkpoints) on workers that live 12 s: Dask started it
    again on each new worker, from scratch, job after job, and the campaign of days
    advanced no further and said nothing. After 3 starts with no new epoch it fails as
    the model's, with what to change."""
    campaign = Campaign.toy(
        tmp_path, "outlived", ON, trials=1, jobs=1, delay=10, epochs=2, more="lifetime: 12\n"
    )
    started = time.monotonic()
    try:
        study = campaign.start().finish(timeout=240)
    finally:
        campaign.stop()
    print(f"\n{time.monotonic() - started:.0f} s, jobs {list(campaign.watch.jobs)}")
    print(campaign.output()[-1500:])
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and trial.user_attrs[attrs.FAILURE] == "model"
    assert trial.user_attrs[attrs.ERROR_TYPE] == "OutlivesItsWorkers"
    assert "give the launcher profile a longer walltime" in trial.user_attrs[attrs.ERROR]
    assert len(campaign.watch.jobs) >= 4  # a job per start
