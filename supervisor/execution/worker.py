"""The Dask side of a trial: ``run_trial(spec) -> TrialResult``, the task the driver
submits, and ``cancel_trials``, which the driver runs on every worker. Neither raises.

``run_trial`` hands the trial to this worker thread's trial process (``trial_host``),
to an mpiexec job for a multi-rank trial (``ranks.launch``), or runs it here when
``spec.isolation`` is "inline"; it streams the start and every epoch to the driver
(``channel``) and applies the driver's pruning verdicts.
"""

from __future__ import annotations

import contextlib
import time

from supervisor.execution import channel, worker_log
from supervisor.execution.execute import execute, trial_provenance, worker_address
from supervisor.execution.provenance import node_name
from supervisor.execution.trial import EpochHook, TrialResult, TrialSpec


def run_trial(spec: TrialSpec) -> TrialResult:
    """The task the driver submits: run ``spec`` in this worker's trial process (see
    ``supervisor.execution.trial_host``), or here when ``spec.isolation`` is "inline". Tells the
    driver when it starts and after every epoch (``supervisor.execution.channel``)."""
    worker_log.to_run_log()  # a local cluster's: its output to the run's workers.log
    address = worker_address()
    start = {"kind": "started", "worker": address, "hostname": node_name()}
    stream = channel.TrialStream(spec, {**start, "time": time.time()})
    with channel.running(spec) as control, contextlib.closing(stream):
        report = _report_to_driver(stream, control)
        if spec.ranks > 1:  # an mpiexec job of its own, whatever the isolation
            from supervisor.execution.ranks.launch import run_ranked_trial

            result = run_ranked_trial(spec, spec.ranks, on_epoch=report)
        elif spec.isolation == "inline":
            return execute(spec, report)
        else:
            from supervisor.execution.trial_host import host

            result = host().run(spec, memory_limit_mb=_worker_memory_limit_mb(), on_epoch=report)
    result.worker = result.worker or address
    # A trial stopped from outside (time or memory limit, its process died) has no
    # provenance of its own: this process's is the same node, job and settings.
    result.extra.setdefault("provenance", trial_provenance(spec))
    return result


def _report_to_driver(stream: channel.TrialStream, control: channel.TrialControl) -> EpochHook:
    def report(epoch: int, metrics: dict[str, float]) -> bool:
        stream.epoch(epoch, metrics)
        return control.verdict(epoch)

    return report


def _worker_memory_limit_mb() -> float | None:
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return limit / 2**20 if limit else None


def cancel_trials(
    study_name: str, numbers: list[int], why: tuple[str, str] | None = None
) -> list[int]:
    """Stop these trials wherever they run in this worker process (the driver runs it on
    every worker through ``Client.run``); the numbers it stopped. ``why`` (error type,
    message): each ends as a model failure, not as interrupted."""
    from supervisor.execution.ranks.launch import cancel_ranked_trials
    from supervisor.execution.trial_host import cancel_hosts

    stopped = cancel_hosts(study_name, numbers, why)
    stopped += cancel_ranked_trials(study_name, numbers)  # mpiexec jobs of K-rank trials
    channel.cancel(study_name, numbers)  # a trial waiting for a verdict stops waiting
    return stopped
