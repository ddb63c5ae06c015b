"""Resume after a dead driver: close its RUNNING zombies and queue their params again.

Every trial records the driver that asked it (host:pid:token), and each driver refreshes
a heartbeat in the study. A RUNNING trial is a zombie when its driver ran on this host
and that process is gone, or when its driver's heartbeat is older than ``stale_after``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

STALE_AFTER = 180.0  # seconds without a heartbeat before another host's driver is dead
HEARTBEAT_EVERY = 30.0


def new_driver_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def driver_alive(driver: str, heartbeats: dict[str, Any], now: float, stale_after: float) -> bool:
    host, _, rest = driver.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return _pid_alive(int(pid_text))
    beat = heartbeats.get(driver)
    return isinstance(beat, int | float) and now - beat < stale_after


@dataclass
class Recovered:
    zombies: list[int]  # trial numbers closed as failed
    requeued: int


def recover(study: optuna.Study, stale_after: float = STALE_AFTER) -> Recovered:
    import optuna
    from optuna.trial import TrialState

    now = time.time()
    heartbeats = {
        k[len(attrs.HEARTBEAT_PREFIX) :]: v
        for k, v in study.user_attrs.items()
        if k.startswith(attrs.HEARTBEAT_PREFIX) and v is not None
    }
    alive = {d: driver_alive(d, heartbeats, now, stale_after) for d in heartbeats}
    # A driver killed between its ask and recording itself on the trial leaves a RUNNING
    # trial without a driver. When a driver of this study died and none lives, no one
    # can be half-way through an ask: such a trial is that driver's zombie.
    orphans_are_zombies = bool(alive) and not any(alive.values())
    zombies: list[int] = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = frozen.user_attrs.get(attrs.DRIVER)
        if isinstance(driver, str):
            if driver_alive(driver, heartbeats, now, stale_after):
                continue
        elif orphans_are_zombies:
            pass
        elif frozen.datetime_start and now - frozen.datetime_start.timestamp() < stale_after:
            continue  # started by another tool, or being asked by a live driver: leave it
        trial = optuna.Trial(study, frozen._trial_id)
        trial.set_user_attr(attrs.FAILURE, "infrastructure")
        trial.set_user_attr("error_type", "DriverLost")
        trial.set_user_attr("error", f"its driver {driver or '(unknown)'} died while it ran")
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        requeue(study, frozen.number, frozen.params, frozen.user_attrs)
        zombies.append(frozen.number)
    for driver, is_alive in alive.items():
        if not is_alive:
            study.set_user_attr(attrs.HEARTBEAT_PREFIX + driver, None)
    return Recovered(zombies=zombies, requeued=len(zombies))


def requeue(
    study: optuna.Study,
    number: int,
    params: dict[str, Any],
    user_attrs: dict[str, Any],
) -> None:
    """Queue the same parameters again, remembering which attempt this is (and carrying
    the attributes a re-run must keep, such as an ensemble member's seed)."""
    retry_of = user_attrs.get(attrs.RETRY_OF)
    study.enqueue_trial(
        params,
        user_attrs={
            **{k: user_attrs[k] for k in attrs.CARRIED if k in user_attrs},
            attrs.ATTEMPT: int(user_attrs.get(attrs.ATTEMPT, 1)) + 1,
            attrs.RETRY_OF: retry_of if retry_of is not None else number,
        },
        skip_if_exists=False,
    )


def orphaned(
    study_attrs: Mapping[str, Any], trials: Iterable[FrozenTrial], now: float
) -> set[int]:
    """RUNNING trials whose driver is gone, by the test ``supervisor search`` applies when
    it resumes (its process, on this host; else its heartbeat): it closes and re-queues
    them. Trials not started by a supervisor driver are never called orphans."""
    prefix = attrs.HEARTBEAT_PREFIX
    beats = {k[len(prefix) :]: v for k, v in study_attrs.items() if k.startswith(prefix)}
    alive = {k: v for k, v in beats.items() if v is not None}
    return {
        t.number
        for t in trials
        if t.state.name == "RUNNING"
        and isinstance(driver := t.user_attrs.get(attrs.DRIVER), str)
        and not driver_alive(driver, alive, now, STALE_AFTER)
    }
