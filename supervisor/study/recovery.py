"""Resume after a dead driver: close its RUNNING zombies and queue their params again.

Every trial records the driver that asked it (host:pid:token), and each driver holds a
lease in the study: a heartbeat it renews every ``STALE_AFTER / 3`` seconds (``renew``;
whether one is due is looked at from every loop turn and between the asks of a long
fill), and clears when it stops. A RUNNING trial is a zombie when its driver ran on this
host and that process is gone, or when its driver's lease ran out (no heartbeat for
``STALE_AFTER`` seconds: a driver killed on another host is taken over within half a
minute, not three), or when the batch job it ran in is gone or was requeued since
(``supervisor.study.batch_job``: no wait at all). The lease tolerates clocks of the hosts
that differ by up to two thirds of ``STALE_AFTER`` (less the time a look may wait: a slow
ask of a fill). Leases are not judged for ``STALE_AFTER`` seconds after this process found
its database server back from an outage (``supervisor.study.rdb``): none could be renewed.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals
from supervisor.study import attrs, batch_job, retry

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

STALE_AFTER = 30.0  # seconds without a heartbeat before another host's driver is dead
HEARTBEAT_EVERY = 5.0
REUSED_AFTER = 10.0  # a process started this long after a driver's beat is not that driver
# What ties a trial to the CMA-ES generation its parameters were drawn for (Optuna's
# CmaEsSampler, plain, separable or with margin, and CMAwM's point). A re-run's parameters
# are fixed, so the sampler never tags it: untagged, CMA-ES counted it in no generation,
# and a generation with k trials in flight at a Ctrl-C, walltime, kill or lost worker
# asked k more trials to fill it. Tagged, the re-run completes its own generation.
SAMPLER_TAGS = frozenset({"cma:generation", "sepcma:generation", "cmawm:generation", "x_for_tell"})


# The drivers of this process that stopped, however they stopped. One aborted by an
# exception (a second Ctrl-C) leaves the process alive: in a notebook the next search runs
# in it, took the aborted driver's RUNNING trials for a live driver's and waited on them.
_STOPPED: set[str] = set()


def new_driver_id() -> str:
    """``host:pid:token``, and ``:<batch job>`` when the driver runs in one."""
    found = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
    job = batch_job.current()
    return f"{found}:{job}" if job else found


def stopped(driver: str) -> None:
    """Driver ``driver`` of this process has stopped: its RUNNING trials are zombies."""
    _STOPPED.add(driver)


def _pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs, and ran already at time ``since`` (when known): a
    process started later holds a dead driver's reused pid, and the driver's trials
    waited for it for ever (a resume found nothing to take over, and waited on them)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if since is None:
        return True
    import psutil  # type: ignore[import-untyped]

    try:
        # The margin: the clock may have been adjusted since (a reused pid comes later).
        return bool(psutil.Process(pid).create_time() <= since + REUSED_AFTER)
    except psutil.Error:  # gone meanwhile
        return False


def driver_alive(
    driver: str,
    heartbeats: dict[str, Any],
    now: float,
    stale_after: float,
    since: float | None = None,
) -> bool:
    """``since``: a time the driver ran at (a trial's start), where it has no heartbeat."""
    host, pid_text, _token, job = [*driver.split(":", 3), "", "", ""][:4]
    beat = heartbeats.get(driver)
    if driver in _STOPPED:  # this process's, which lives on
        return False
    if host == socket.gethostname() and pid_text.isdigit():
        # Its heartbeats and trials' starts are this host's clock, as is the process's.
        return _pid_alive(int(pid_text), beat if isinstance(beat, int | float) else since)
    if not (isinstance(beat, int | float) and now - beat < stale_after):
        return False
    return not (job and batch_job.gone(job))


@dataclass
class Recovered:
    zombies: list[int]  # trial numbers closed as failed
    requeued: int


def recover(study: optuna.Study, stale_after: float | None = None) -> Recovered:
    from optuna.trial import TrialState

    from supervisor.study.rdb import answered_again_within

    stale_after = STALE_AFTER if stale_after is None else stale_after
    if answered_again_within(stale_after):
        # The database was away: every lease went stale with it, a live driver's too.
        # Judged again once the drivers that lived through it have renewed theirs.
        stale_after = math.inf
    now = time.time()
    heartbeats = leases(study.user_attrs)
    alive = {d: driver_alive(d, heartbeats, now, stale_after) for d in heartbeats}
    # A driver killed between its ask and recording itself on the trial leaves a RUNNING
    # trial without a driver. When a driver of this study died and none lives, no one
    # can be half-way through an ask: such a trial is that driver's zombie.
    orphans_are_zombies = bool(alive) and not any(alive.values())
    zombies: list[int] = []
    queued: set[int] | None = None  # trials whose re-run is in the study, read if needed
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = frozen.user_attrs.get(attrs.DRIVER)
        started = frozen.datetime_start.timestamp() if frozen.datetime_start else None
        if isinstance(driver, str):
            if driver_alive(driver, heartbeats, now, stale_after, started):
                continue
        elif orphans_are_zombies:
            pass
        elif started is not None and now - started < stale_after:
            continue  # started by another tool, or being asked by a live driver: leave it
        if queued is None:
            queued = rerun_queued(study)
        why = f"its driver {driver or '(unknown)'} died while it ran"
        # Its re-run is queued first: a kill between the two writes leaves it RUNNING,
        # found again here with its re-run queued, and closed only (closed first, a kill
        # lost its re-run). Where another driver closes it first, ours is taken back.
        rerun = None
        if frozen.number not in queued:
            # A queued trial its driver asked but died before giving its parameters holds
            # them in Optuna's fixed_params: the re-run is that configuration, not a new one.
            params = frozen.params or dict(frozen.system_attrs.get("fixed_params") or {})
            rerun = requeue(
                study, frozen.number, params, frozen.user_attrs, "stopped", frozen.system_attrs
            )
        if _close(study, frozen, why):
            zombies.append(frozen.number)
        elif rerun is not None:
            withdraw(study, rerun, f"a second re-run of trial {frozen.number}: queued already")
    for driver, is_alive in alive.items():
        if not is_alive:
            study.set_user_attr(attrs.HEARTBEAT_PREFIX + driver, None)
    return Recovered(zombies=zombies, requeued=len(zombies))


def rerun_queued(study: optuna.Study) -> set[int]:
    """The trials a re-run was queued for (``attrs.RERUN_OF`` of every trial)."""
    found = (t.user_attrs.get(attrs.RERUN_OF) for t in study.get_trials(deepcopy=False))
    return {n for n in found if isinstance(n, int)}


def _close(study: optuna.Study, frozen: FrozenTrial, why: str) -> bool:
    """Close a dead driver's trial as failed; False where another driver closed it first.
    Drivers that start together, or take over together, recover the same trials: the
    storage takes the first state written and refuses the others, so one of them, and
    only one, re-queues it."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    trial = optuna.Trial(study, internals.trial_id(frozen))
    try:
        trial.set_user_attr(attrs.FAILURE, "infrastructure")
        trial.set_user_attr("error_type", "DriverLost")
        trial.set_user_attr("error", why)
        internals.tell(study, trial, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # ValueError: "Cannot tell a FAIL trial"
        if (
            internals.study_storage(study)
            .get_trial(internals.trial_id(frozen))
            .state.is_finished()
        ):
            return False
        raise
    return True


def requeue(
    study: optuna.Study,
    number: int,
    params: dict[str, Any],
    user_attrs: dict[str, Any],
    cause: retry.Cause,
    system_attrs: Mapping[str, Any] | None = None,
) -> int:
    """Queue the same parameters again as the next trial of the chain (``cause``: why it
    did not finish, which decides whether this counts as one of its attempts; see
    ``supervisor.study.retry``); returns the queued trial's id. Written before the trial
    is closed: a driver killed between the two writes loses no re-run. ``system_attrs``:
    the trial's, for the sampler's tags a re-run keeps (``SAMPLER_TAGS``)."""
    from optuna.trial import TrialState, create_trial

    tags = {k: v for k, v in (system_attrs or {}).items() if k in SAMPLER_TAGS}
    queued = create_trial(
        state=TrialState.WAITING,
        system_attrs={**tags, "fixed_params": params},  # as Study.enqueue_trial queues one
        user_attrs=retry.rerun_attrs(user_attrs, number, cause),
    )
    storage = internals.study_storage(study)
    return storage.create_new_trial(internals.study_id(study), template_trial=queued)


def withdraw(study: optuna.Study, trial_id: int, why: str) -> bool:
    """Take a queued trial off the queue as Optuna's ask does (no driver can have it
    then) and tell it failed, ``surplus``: never run, not counted toward the budget.
    False where a driver asked it first: it runs."""
    import optuna
    from optuna.trial import TrialState

    from supervisor.study.storage import set_user_attrs

    if not internals.study_storage(study).set_trial_state_values(trial_id, TrialState.RUNNING):
        return False
    trial = optuna.Trial(study, trial_id)
    set_user_attrs(trial, {attrs.FAILURE: "surplus", attrs.ERROR: why})
    internals.tell(study, trial, state=TrialState.FAIL, skip_if_finished=True)
    return True


def renew(
    study: optuna.Study, driver: str, renewed: float, now: float, final: bool = False
) -> float:
    """Write ``driver``'s lease when it is due (``STALE_AFTER / 3`` since the last one,
    ``renewed``); clear it when ``final``. Returns when it was last written. Each renewal
    is a record in the campaign's journal: every 5 s, in whole and fractional seconds, it
    was 2.9 MB a day; every 10 s, in whole seconds (the lease is judged to 30 s), 1.4 MB."""
    key = attrs.HEARTBEAT_PREFIX + driver
    if final:
        study.set_user_attr(key, None)
        return now
    if now - renewed < STALE_AFTER / 3:
        return renewed
    study.set_user_attr(key, int(now))
    return now


def leases(study_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Each driver's last heartbeat, from the study's attributes (a finished driver's is
    cleared: it holds none)."""
    prefix = attrs.HEARTBEAT_PREFIX
    found = {k[len(prefix) :]: v for k, v in study_attrs.items() if k.startswith(prefix)}
    return {driver: beat for driver, beat in found.items() if beat is not None}


def orphaned(
    study_attrs: Mapping[str, Any], trials: Iterable[FrozenTrial], now: float
) -> set[int]:
    """RUNNING trials whose driver is gone, by the test ``supervisor search`` applies when
    it resumes (its process, on this host; else its heartbeat): it closes and re-queues
    them. Trials not started by a supervisor driver are never called orphans."""
    alive = leases(study_attrs)
    return {
        t.number
        for t in trials
        if t.state.name == "RUNNING"
        and isinstance(driver := t.user_attrs.get(attrs.DRIVER), str)
        and not driver_alive(
            driver,
            alive,
            now,
            STALE_AFTER,
            t.datetime_start.timestamp() if t.datetime_start else None,
        )
    }
