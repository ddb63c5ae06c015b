"""Worker jobs still queued when a link of a driver chain ends are kept for the next link.

A link of a ``supervisor submit`` chain stops at its walltime warning, and its cluster's
close cancelled every worker job, also those still waiting in the queue: the next link
submitted fresh ones at the back of it, and on a busy machine each link lost its
workers' hours of queue priority. In a chain on Slurm, each worker job now reads its
scheduler's address when it starts, from ``ADDRESS_FILE`` in the run directory (its
script waits ``WAIT_S`` at most for it, then ends; at once if the chain's latest driver
job has left the queue): the driver writes it once its
scheduler listens and removes it when its cluster closes. A link stopped by its walltime
warning hands its jobs still PENDING over (``hand_over``: taken out of the cluster, which
would cancel them, and listed in ``KEPT_FILE``); the next link adopts those still in the
queue whose job it would submit the same (``adopt``: counted as its own, not submitted
again) and cancels the others. A chain that ends after the link (budget done, no
progress) and ``supervisor stop`` cancel them (``cancel_kept``).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.clusters.renewal import JobLife
from supervisor.clusters.unanswered import DEFAULT_TIMEOUT, TimedOut, run

# Set by the job script of ``supervisor submit``: the search is a link of a chain.
CHAIN_ENV = "SUPERVISOR_DRIVER_CHAIN"
ADDRESS_FILE = "scheduler.address"  # in the run directory: the scheduler workers join
KEPT_FILE = "queued-worker-jobs.json"  # in the run directory: jobs kept for the next link
ADDRESS_ENV = "SUPERVISOR_SCHEDULER"  # the address, in the worker job's shell
WAIT_S = 600  # a job that starts between two links waits this long for the next one
CHECK_EVERY = 6  # of its 5-s polls: it looks the next link's driver job up in the queue
LIVE = "PENDING,CONFIGURING,RUNNING,SUSPENDED,REQUEUED"  # a driver job that runs, or will
ADOPTABLE = "PENDING,CONFIGURING,RUNNING"  # RUNNING: started between links, waiting
# The job ids in CHAIN_FILE (json.dumps: '"job_id": "123",'), one a line.
_JOB_ID_SED = r's/.*"job_id": *"\([^"]*\)".*/\1/p'
LIFETIME = re.compile(r"--lifetime (\d+)s")
WAITED = r"--lifetime $((\1 > sv_waited + 60 ? \1 - sv_waited : 60))s"


def enabled(kind: str) -> bool:
    """Jobs are handed over in a chain on Slurm, whose queue shows a job's state by id."""
    return kind == "slurm" and bool(os.environ.get(CHAIN_ENV))


def prologue(run_dir: Path) -> list[str]:
    """Job script lines that set ``ADDRESS_ENV`` from ``ADDRESS_FILE``, waiting for it.

    While it waits, it looks up the chain's latest driver job (the last of
    ``CHAIN_FILE``) every ``CHECK_EVERY`` polls: a driver job the user cancelled
    (``scancel``) never writes the address, and the job waited its full ``WAIT_S`` on a
    node for nothing. Where the queue does not answer, it waits on."""
    path = shlex.quote(str((run_dir / ADDRESS_FILE).resolve()))
    chain = shlex.quote(str((run_dir / rundir.DRIVER_DIR / rundir.CHAIN_FILE).resolve()))
    gone = f"no driver of the campaign started in {WAIT_S} s ({path} absent): ending"
    left = "the campaign's driver job $sv_driver has left the queue (cancelled?): ending"
    return [
        "sv_begun=$(date +%s)",
        f"sv_address={path}",
        f"sv_chain={chain}",
        "sv_driver_gone() {",
        f'  sv_driver=$(sed -n {shlex.quote(_JOB_ID_SED)} "$sv_chain" 2>/dev/null | tail -n 1)',
        '  [ -n "$sv_driver" ] || return 1',
        f'  sv_seen=$(timeout 60 squeue -h -j "$sv_driver" -t {LIVE} -o %T 2>&1) &&'
        ' [ -z "$sv_seen" ] && return 0',
        '  case $sv_seen in *"nvalid job id"*) return 0 ;; esac',  # rc 1: unknown to Slurm
        "  return 1",
        "}",
        f'for sv_i in $(seq {WAIT_S // 5}); do [ -s "$sv_address" ] && break;'
        f" if [ $((sv_i % {CHECK_EVERY})) = 1 ] && sv_driver_gone; then"
        f' echo "{left}" >&2; exit 0; fi; sleep 5; done',
        f'{ADDRESS_ENV}=$(cat "$sv_address" 2>/dev/null) || {{ echo {shlex.quote(gone)} >&2;'
        " exit 0; }",
        "sv_waited=$(($(date +%s) - sv_begun))",
    ]


def fingerprint(kind: str, keywords: dict[str, Any]) -> str:
    """What a job was submitted with (the profile, as job keywords): a job of another
    profile is not adopted."""
    text = json.dumps([kind, keywords], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def relaying(job_cls: Any, adopted: dict[str, str]) -> type:
    """``job_cls`` whose worker joins the scheduler named by ``ADDRESS_ENV``; a job named
    in ``adopted`` (name -> job id) is the queued one of the previous link: not submitted."""
    from distributed.core import Status

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        job_cls.__init__(self, *args, **kwargs)
        if self.scheduler:
            template = self._command_template.replace(self.scheduler, f'"${ADDRESS_ENV}"', 1)
            # The time it waited for a driver came off its walltime: off its lifetime too,
            # or the worker outlived the job and Slurm killed it mid-trial.
            self._command_template = LIFETIME.sub(WAITED, template)

    async def start(self: Any) -> None:
        job_id = adopted.pop(str(self.name), None)
        if job_id is None:
            await job_cls.start(self)
            return
        self.job_id = job_id
        self.status = Status.running

    members = {"__init__": __init__, "start": start}
    return type(job_cls.__name__, (job_cls,), members)


def publish(run_dir: Path, address: str) -> None:
    atomic.write(run_dir / ADDRESS_FILE, address + "\n", mode=0o600)


def withdraw(run_dir: Path) -> None:
    """The scheduler closes: a job that starts now waits for the next link's."""
    with contextlib.suppress(OSError):
        (run_dir / ADDRESS_FILE).unlink()


def _states(ids: list[str], timeout: float, states: str) -> dict[str, str] | None:
    """Job id -> state of the user's jobs among ``ids`` in ``states``; None: no answer."""
    if not ids:
        return {}
    user = getpass.getuser()
    cmd = ["squeue", "-h", "-u", user, "-j", ",".join(ids), "-t", states, "-o", "%i %T"]
    try:
        done = run(cmd, timeout)
    except (OSError, TimedOut):
        return None
    if done.returncode != 0:  # "Invalid job id specified": none of them is known any more
        return {} if "invalid job id" in done.stderr.lower() else None
    return dict(line.split()[:2] for line in done.stdout.splitlines() if len(line.split()) > 1)


async def _take_pending(cluster: Any, timeout: float) -> list[dict[str, Any]]:
    """In the cluster's loop: its jobs still PENDING, out of it (its close cancels the
    rest); each with its name and lifetime."""
    import asyncio

    if cluster._adaptive is not None:  # it would submit jobs in their place
        cluster._adaptive.stop()
    jobs = {str(job.job_id): name for name, job in cluster.workers.items() if job.job_id}
    states = await asyncio.to_thread(_states, list(jobs), timeout, "PENDING")
    kept = []
    for job_id in states or {}:
        name = jobs[job_id]
        life = cluster.renewal.jobs.pop(name, None) if cluster.renewal else None
        cluster.worker_spec.pop(name, None)
        cluster.workers.pop(name, None)
        kept.append({"job_id": job_id, "name": name, "lifetime": life and life.lifetime})
    return kept


def hand_over(cluster: Any, run_dir: Path, print_: Any = None) -> int:
    """The cluster's worker jobs still PENDING, kept for the next link (``KEPT_FILE``);
    how many."""
    timeout = cluster.submissions.timeout if cluster.submissions else DEFAULT_TIMEOUT
    kept = cluster.sync(_take_pending, cluster, timeout)
    if kept:
        record = {"fingerprint": cluster.handover_fingerprint, "jobs": kept}
        atomic.write(run_dir / KEPT_FILE, json.dumps(record, indent=2) + "\n", mode=0o600)
    return len(kept)


def _read_kept(run_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((run_dir / KEPT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _cancel(ids: list[str], timeout: float) -> None:
    if ids:
        with contextlib.suppress(OSError, TimedOut):
            run(["scancel", *ids], timeout)


def cancel_kept(run_dir: Path, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The jobs a link kept for a next link that will not come, cancelled; their ids."""
    record = _read_kept(run_dir)
    ids = [str(job.get("job_id")) for job in record.get("jobs") or [] if isinstance(job, dict)]
    _cancel(ids, timeout)
    with contextlib.suppress(OSError):
        (run_dir / KEPT_FILE).unlink()
    return ids


def adopt(run_dir: Path, mark: str, renewal: Any, timeout: float) -> tuple[dict[str, Any], str]:
    """The jobs the previous link kept, still queued and of the same profile (``mark``):
    their worker specs' names -> job ids, and a line saying so ("" when none). The
    others are cancelled. Each adopted job's lifetime goes to ``renewal``."""
    record = _read_kept(run_dir)
    jobs = [j for j in record.get("jobs") or [] if isinstance(j, dict) and j.get("job_id")]
    with contextlib.suppress(OSError):
        (run_dir / KEPT_FILE).unlink()
    if not jobs:
        return {}, ""
    ids = [str(job["job_id"]) for job in jobs]
    states = _states(ids, timeout, ADOPTABLE) or {}
    same = record.get("fingerprint") == mark
    adopted = {str(j["name"]): str(j["job_id"]) for j in jobs if same and j["job_id"] in states}
    _cancel([i for i in ids if i in states and i not in adopted.values()], timeout)
    now = time.time()
    for job in jobs:
        if str(job["name"]) in adopted:
            lifetime = job.get("lifetime")
            renewal.jobs[str(job["name"])] = JobLife(lifetime and float(lifetime), now)
    if not adopted:
        return {}, ""
    listed = ", ".join(adopted.values())
    return adopted, f"Adopted {len(adopted)} worker job(s) the last driver job kept: {listed}"
