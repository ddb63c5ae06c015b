"""Dask's adaptive scaling of batch jobs, with jobs renewed before they retire.

``renewing_cluster(base)`` makes a dask-jobqueue cluster class whose jobs each get their
own lifetime (``supervisor.clusters.renewal``: spread over a cohort, one per job, no
per-worker stagger); ``Renewing`` is the ``Adaptive`` it scales with: its target is
Dask's own (queued trials, clamped to min/max jobs) plus one job per job about to retire,
and a job that retired is dropped at once rather than after the lost-worker timeout
(which, for jobs of several worker processes, never comes: Dask looks the job up by the
worker's name, ``<job>-<i>``, and so never replaces such a job).

Trial durations, which the lead needs, come from a scheduler plugin: the compute time of
every task named ``trial-...`` that finished, fetched at each adaptive step (the
scheduler runs in a process of its own, ``supervisor.clusters.scheduler_process``). The
same plugin keeps scale-down off the jobs that run a trial.
"""

from __future__ import annotations

import contextlib
import math
import shlex
import time
from typing import Any

from distributed import Adaptive, SchedulerPlugin
from distributed.protocol.pickle import dumps
from distributed.utils import key_split

from supervisor.clusters.renewal import Renewal, lifetime_args
from supervisor.clusters.submissions import Refused

TRIAL_PREFIX = "trial"  # the driver's task keys: trial-<number>-<driver>
PLUGIN_NAME = "supervisor-trial-durations"
HANDLER = "supervisor_trial_durations"  # what Renewing calls on the scheduler for them


class TrialDurations(SchedulerPlugin):
    """On the scheduler (a process of its own): keeps the compute time of every finished
    trial until ``Renewing`` fetches them (the scheduler handler ``HANDLER``), and spares
    the jobs running a trial when Adaptive scales down. ``processes``: worker processes
    per job (named ``<job>-<i>`` when more than one)."""

    name = PLUGIN_NAME

    def __init__(self, processes: int = 1) -> None:
        self.durations: list[float] = []
        self.processes = processes

    async def start(self, scheduler: Any) -> None:
        scheduler.handlers[HANDLER] = self.drain

    def drain(self) -> list[float]:
        durations, self.durations = self.durations, []
        return durations

    def valid_workers_downscaling(self, scheduler: Any, workers: list[Any]) -> list[Any]:
        """Workers that scale-down may close: none of a job running a trial. Dask spares
        busy workers, not their jobs: with jobs of several processes it closed the idle
        sibling of a busy one, and closing any process cancels the whole job. Given a
        target below the busy count (clamped at max_jobs while a renewed job and its
        replacement overlap), it closed busy workers too. Their trials started again
        from scratch elsewhere, and after three such starts failed as OutlivesItsWorkers.
        A job with a trial running is ended by its lifetime only."""
        busy = {self._job(ws) for ws in scheduler.workers.values() if ws.processing}
        return [ws for ws in workers if self._job(ws) not in busy]

    def _job(self, ws: Any) -> str:
        name = str(ws.name)
        return name.rsplit("-", 1)[0] if self.processes > 1 else name

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start != "processing" or finish != "memory" or key_split(key) != TRIAL_PREFIX:
            return
        for step in kwargs.get("startstops") or ():
            if step.get("action") == "compute":
                self.durations.append(float(step["stop"]) - float(step["start"]))


def renewing_cluster(base: Any) -> type:
    """``base`` (a dask-jobqueue cluster class) giving each new job its own lifetime from
    ``self.renewal``, which the caller sets before the first job is asked for."""

    def new_worker_spec(self: Any) -> dict[str, Any]:
        spec: dict[str, Any] = base.new_worker_spec(self)
        ((name, entry),) = spec.items()
        lifetime = self.renewal.new_job(str(name), time.time())
        options = dict(entry["options"])
        options["worker_extra_args"] = lifetime_args(
            list(options.get("worker_extra_args") or []), lifetime
        )
        return {name: {**entry, "options": options}}

    async def correct_state(self: Any) -> None:
        # A refused job is recorded (``supervisor.clusters.submissions``) and said in one
        # line by the driver, not logged as a traceback.
        with contextlib.suppress(Refused):
            await base._correct_state_internal(self)

    members = {"new_worker_spec": new_worker_spec, "_correct_state_internal": correct_state}
    return type(base.__name__, (base,), {**members, "renewal": None, "submissions": None})


def job_of(worker_name: str, groups: dict[str, str]) -> str:
    """The job a worker belongs to (``groups``: worker name -> job, for jobs of several
    worker processes); a job of one process has the worker's name."""
    return groups.get(worker_name, worker_name)


class Renewing(Adaptive):
    """Adaptive scaling that renews jobs before they retire (``cluster.renewal``)."""

    def __init__(self, cluster: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(cluster, *args, **kwargs)
        self._plugged = False

    @property
    def jobs(self) -> Any:
        """The dask-jobqueue cluster (``Adaptive.cluster`` is typed as any cluster)."""
        return self.cluster

    @property
    def renewal(self) -> Renewal:
        renewal: Renewal = self.jobs.renewal
        return renewal

    async def _trial_durations(self) -> None:
        """Tell the renewal how long the trials that finished since the last call took."""
        scheduler = self.jobs.scheduler_comm
        if not self._plugged:
            plugin = dumps(TrialDurations(self._processes()))
            await scheduler.register_scheduler_plugin(
                plugin=plugin, name=PLUGIN_NAME, idempotent=True
            )
            self._plugged = True
        for seconds in await getattr(scheduler, HANDLER)():
            self.renewal.trial_finished(seconds)

    def _processes(self) -> int:
        job = getattr(self.jobs, "_dummy_job", None)  # none: a cluster not of batch jobs
        return max(1, int(getattr(job, "worker_processes", 1)))

    def _connected_jobs(self) -> set[str]:
        groups = {
            f"{name}{suffix}": str(name)
            for name, spec in self.jobs.worker_spec.items()
            for suffix in spec.get("group", ())
        }
        workers = self.jobs.scheduler_info.get("workers", {}).values()
        return {job_of(str(w.get("name")), groups) for w in workers}

    async def safe_target(self) -> int:
        await self._trial_durations()
        submissions = getattr(self.jobs, "submissions", None)
        if submissions is not None:  # refused jobs, held long enough: ask again
            cancel = shlex.split(self.jobs._dummy_job.cancel_command)
            await submissions.strays.sweep(cancel, submissions.timeout)
            again = submissions.to_ask_again(time.time())
            for name in again:
                self.renewal.jobs.pop(name, None)
            if again:
                await self.jobs.scale_down(again)
        target: int = await super().safe_target()
        now = time.time()
        retired = self.renewal.observe(self._connected_jobs(), now)
        if retired:  # gone for good: drop their specs now, not after the lost-worker timeout
            await self.jobs.scale_down(retired)
        leaving = self.renewal.leaving(now) if target > 0 else 0
        processes = self._processes()
        planned = math.ceil(len(self.plan) / processes)
        wanted = math.ceil(target / processes) + leaving
        self.renewal.replacements_unasked(wanted - planned)
        return target + leaving * processes
