"""Workers in batch jobs through dask-jobqueue: Slurm, PBS, LSF, SGE and HTCondor.

Each batch job reserves ``cores`` and runs ``processes`` Dask worker processes; every worker
runs one trial at a time with ``cores // processes`` threads (dask-jobqueue would give a
worker ``cores // processes`` Dask threads, i.e. that many concurrent trials). Jobs come and
go with Dask's adaptive scaling between ``min_jobs`` and ``max_jobs``; workers retire before
the walltime (``--lifetime``, one per job, spread over the jobs of a cohort) and each job's
replacement is asked for ahead of its retirement (``supervisor.clusters.renewal``); the
driver re-runs what a lost worker was running.
"""

from __future__ import annotations

import copy
import functools
import logging
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.clusters import gpu_pin, handover, job_lookup, scratch
from supervisor.clusters.handle import ClusterHandle
from supervisor.clusters.profile import Launcher, TlsFiles
from supervisor.clusters.renewal import Renewal, cohort_spread, lifetime_args
from supervisor.clusters.script_values import (
    NAME,
    NOT_IN_A_PATH,
    WALLTIME,
    array_directive,
    control_character,
    shell_word,
    texts_in,
)
from supervisor.clusters.security import (
    campaign_files,
    security_from_files,
    write_campaign_certificate,
)
from supervisor.errors import UserError
from supervisor.execution.provenance import JOB_CORES_ENV

CLUSTER_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}
# How a job asks for GPUs; sites differ (PBS and SGE most), job_extra_directives can say more.
GPU_DIRECTIVES = {
    "slurm": "--gres=gpu:{n}",
    "pbs": "-l ngpus={n}",
    "lsf": '-gpu "num={n}"',
    "sge": "-l gpu={n}",
}
JOBS_DIR = "jobs"  # batch-system logs of the worker jobs, in the run directory
SCHEDULER_LOG = "scheduler.log"  # the scheduler process's errors, in the run directory
# How the scheduler reads the lines of a job script made for it.
DIRECTIVES = {"slurm": "#SBATCH", "pbs": "#PBS", "lsf": "#BSUB", "sge": "#$"}
NAME_KEYS = ("queue", "account", "project", "job_name", "interface")  # one word each
# Until a trial has finished, Dask's adaptive scaling assumes tasks take 0.5 s and would ask
# for one job for the whole queue; trials are long: one worker per queued trial.
TRIAL_DURATION_GUESS = "1h"


@functools.cache
def job_class(kind: str) -> type:
    """dask-jobqueue's job class for ``kind``, with one Dask thread per worker process."""
    from distributed.core import Status

    from supervisor.clusters.jobqueue_module import dask_jobqueue

    base = getattr(dask_jobqueue(), CLUSTER_CLASSES[kind]).job_cls
    one_trial = property(lambda self: 1)  # a worker runs one trial at a time

    async def close(self: Any) -> None:
        await base.close(self)  # cancels the job (dask-jobqueue's, which leaves its status
        # running: distributed's cluster close then stopped on an assertion, half done)
        self.status = Status.closed

    members: dict[str, Any] = {"worker_process_threads": one_trial, "close": close}
    if kind in ("lsf", "htcondor"):

        async def submit(self: Any, script_filename: str) -> str:
            """The submission with the script's path where the queue shows it, so that
            one that timed out is found (``job_lookup.marked``); ``bsub < script`` with
            bsub's errors kept for the message of a refused job
            (``supervisor.clusters.submissions``): dask-jobqueue sends them to /dev/null."""
            words = job_lookup.marked(kind, shlex.split(self.submit_command), script_filename)
            if not getattr(self, "use_stdin", False):
                return str(await self._call([*words, script_filename]))
            command = f"{shlex.join(words)} < {shlex.quote(script_filename)}"
            return str(await self._call([command], shell=True))

        members["_submit_job"] = submit
    return type(base.__name__, (base,), members)


def submit_command(kind: str) -> str:
    """The command that submits the jobs of ``kind``: qsub, bsub, sbatch, condor_submit."""
    job: Any = job_class(kind)
    return str(job.submit_command).split()[0]


def check_script_values(launcher: Launcher) -> None:
    """Refuse a profile value that would not stay what it is in a job script: a newline
    adds a directive or a command of its own (``queue: "gpu\\n#SBATCH --uid=0"``), a space
    or a ``;`` in a queue, account, name or log path splits the directive."""
    where = DIRECTIVES.get(launcher.kind, "submit-file")
    if array := array_directive(launcher.kind, launcher.keywords.get("job_extra_directives")):
        raise UserError(
            f"{launcher.file}: job_extra_directives: {array!r}: a job array's tasks would each"
            " start the same Dask workers and all but one be turned away; ask for several"
            " jobs with max_jobs (and min_jobs) instead"
        )
    for key, value in launcher.keywords.items():
        if key == "scheduler_options":  # keywords of the scheduler, in no script
            continue
        for text in texts_in(value):
            if char := control_character(text):
                raise UserError(
                    f"{launcher.file}: {key}: {text!r} holds a control character ({char});"
                    " a value must stay on its own line of the job script"
                )
        if key in NAME_KEYS and not NAME.fullmatch(str(value)):
            raise UserError(
                f"{launcher.file}: {key}: {value!r}: expected one word of letters, digits and"
                f" _ . @ % + , : = - (it goes into a {where} line)"
            )
        if key == "walltime" and not WALLTIME.fullmatch(str(value)):
            raise UserError(f"{launcher.file}: walltime: {value!r}: expected digits, ':' and '-'")
        if key == "log_directory" and NOT_IN_A_PATH.search(str(value)):
            raise UserError(
                f"{launcher.file}: log_directory: {value!r}: a path in a {where} line cannot"
                " hold whitespace, quotes, '#' or '\\'"
            )


def job_keywords(launcher: Launcher, run_dir: Path, study: str) -> dict[str, Any]:
    """The job keywords: the profile's, completed where neither it nor dask config says."""
    import dask

    kind = launcher.kind
    kw = dict(launcher.keywords)
    kw.pop("scheduler_options", None)

    def configured(name: str) -> Any:
        return dask.config.get(f"jobqueue.{kind}.{name}", None)

    if "log_directory" not in kw and configured("log-directory") is None:
        kw["log_directory"] = str((run_dir / JOBS_DIR).resolve())
    if "job_name" not in kw and configured("name") in (None, "dask-worker"):
        kw["job_name"] = f"sv-{study}"  # tells the campaign's jobs apart in squeue/qstat
    # The worker's command line is one unquoted string in dask-jobqueue: the profile's
    # words are quoted here (what a shell would split or run stays one word).
    if "python" in kw or configured("python") is None:
        kw["python"] = shell_word(kw.get("python", sys.executable))
    if "local_directory" in kw:
        kw["local_directory"] = shell_word(kw["local_directory"])
    # A worker's HTTP server (dashboard, metrics) would listen on every interface of its
    # compute node: loopback only. A user's own --dashboard-address, later, wins.
    if "worker_extra_args" in kw:
        user_args = [shell_word(arg) for arg in kw["worker_extra_args"]]
    else:
        user_args = configured("worker-extra-args") or []
    # The lifetime is not here: each job gets its own (``renewal``, ``longest_lifetime``).
    args = ["--dashboard-address", "127.0.0.1:0", *user_args]
    kw["worker_extra_args"] = args
    prologue = kw.get("job_script_prologue", configured("job-script-prologue")) or []
    # A trial's share of its node, for its cost (supervisor.execution.provenance).
    exports = [f"export {JOB_CORES_ENV}={launcher.cores}"]
    if launcher.gpus:
        # Each worker process pins its GPU (supervisor.clusters.gpu_pin) and offers GPU=1.
        args += ["--preload", "supervisor.clusters.gpu_pin", "--resources", "GPU=1"]
        exports += [
            f"export {gpu_pin.GPUS_ENV}={launcher.gpus}",
            f"export {gpu_pin.TRIALS_PER_GPU_ENV}={launcher.trials_per_gpu}",
        ]
        directives = kw.get("job_extra_directives", configured("job-extra-directives"))
        if kind == "htcondor":
            kw["job_extra_directives"] = {**(directives or {}), "request_gpus": launcher.gpus}
        else:
            gpus = GPU_DIRECTIVES[kind].format(n=launcher.gpus)
            kw["job_extra_directives"] = [*(directives or []), gpus]
    # The workers' scratch space private on a node other users' jobs share (``scratch``),
    # first: the profile's own lines (an EXIT trap, a scratch folder) come after and win.
    kw["job_script_prologue"] = [*scratch.job_prologue(kind, kw), *prologue, *exports]
    return kw


def longest_lifetime(launcher: Launcher) -> float | None:
    """The lifetime of the longest-lived job: the profile's lifetime + stagger, which it
    checked ends before the walltime; jobs of a cohort get up to ``cohort_spread`` less."""
    if launcher.lifetime is None:
        return None
    return launcher.lifetime + launcher.lifetime_stagger


def make_renewal(launcher: Launcher) -> Renewal:
    longest = longest_lifetime(launcher)
    if longest is None:
        return Renewal(None)
    return Renewal(longest, cohort_spread(longest, launcher.lifetime_stagger))


def tls_files(launcher: Launcher, run_dir: Path, *, create: bool) -> TlsFiles | None:
    if isinstance(launcher.tls, TlsFiles):
        return launcher.tls
    if not launcher.tls:
        return None
    return write_campaign_certificate(run_dir) if create else campaign_files(run_dir)


def job_script(launcher: Launcher, run_dir: Path, study: str) -> str:
    """The script one job would be submitted with; writes nothing (for --dry-run)."""
    files = tls_files(launcher, run_dir, create=False)
    security = security_from_files(files) if files else None
    kw = job_keywords(launcher, run_dir, study)
    # The first job's lifetime (the longest; later ones spread below it).
    kw["worker_extra_args"] = lifetime_args(kw["worker_extra_args"], longest_lifetime(launcher))
    protocol = "tls://" if security else "tcp://"
    log_dir = kw.get("log_directory")
    with tempfile.TemporaryDirectory() as scratch:
        if log_dir and not Path(log_dir).exists():
            kw["log_directory"] = scratch  # dask-jobqueue creates it; show the real path
        job = job_class(launcher.kind)(
            scheduler=f"{protocol}<scheduler-address>:<port>",
            name="<worker-name>",
            config_name=launcher.kind,
            protocol=protocol if security else None,
            security=security,
            **kw,
        )
        script: str = job.job_script()
    return script.replace(scratch, str(log_dir)) if log_dir else script


def refused_by_slurm(launcher: Launcher, run_dir: Path, study: str) -> str | None:
    """What sbatch says about the worker jobs of a Slurm profile it would refuse (a
    partition that does not exist, more memory than a node has), from ``sbatch
    --test-only``; None when it takes them or no sbatch is here. dask-jobqueue logs a
    refused submission and asks again never: the search waited for workers forever.
    A temporary error (the controller restarting, too busy to answer) is not a refusal:
    the jobs' submissions are asked again while it lasts (``submissions``)."""
    import shutil

    from supervisor.clusters.submissions import temporary
    from supervisor.clusters.unanswered import DEFAULT_TIMEOUT, TimedOut, run

    if launcher.kind != "slurm" or shutil.which("sbatch") is None:
        return None
    script = job_script(launcher, run_dir, study)
    timeout = launcher.extra.get("submit_timeout", DEFAULT_TIMEOUT)
    try:
        done = run(["sbatch", "--test-only"], timeout, script)
    except TimedOut:  # a controller that does not answer: as above
        return None
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    said = next((x for x in lines if "error" in x.lower()), " ".join(lines) or "refused")
    return None if temporary(" ".join(lines)) else said[:300]


def make_jobqueue(launcher: Launcher, run_dir: Path, study: str, dashboard: str) -> ClusterHandle:
    import dask
    from distributed import Client

    from supervisor.clusters.adaptive import Renewing, renewing_cluster
    from supervisor.clusters.jobqueue_module import dask_jobqueue
    from supervisor.clusters.scheduler_process import SchedulerProcess
    from supervisor.clusters.submissions import Submissions, Watch, watched
    from supervisor.clusters.unanswered import DEFAULT_TIMEOUT
    from supervisor.study.signals import interrupt_held

    dask.config.set(
        {"distributed.scheduler.default-task-durations": {"trial": TRIAL_DURATION_GUESS}}
    )
    files = tls_files(launcher, run_dir, create=True)
    security = security_from_files(files) if files else None
    scheduler_options = dict(
        launcher.keywords.get("scheduler_options")
        or dask.config.get(f"jobqueue.{launcher.kind}.scheduler-options", None)
        or {}
    )
    scheduler_options.setdefault("dashboard_address", launcher.dashboard or dashboard)
    # The scheduler in a process of its own, not sharing the driver's interpreter lock.
    atomic.folder(run_dir.parent)
    run_dir.mkdir(mode=0o700, exist_ok=True)
    scheduler_options["log_file"] = str(run_dir / SCHEDULER_LOG)
    cluster_class = renewing_cluster(getattr(dask_jobqueue(), CLUSTER_CLASSES[launcher.kind]))
    renewal = make_renewal(launcher)
    job_cls = job_class(launcher.kind)
    timeout = launcher.extra.get("submit_timeout", DEFAULT_TIMEOUT)
    submissions = Submissions(submit_command(launcher.kind), timeout, launcher.kind)
    keywords = job_keywords(launcher, run_dir, study)
    mark = handover.fingerprint(launcher.kind, keywords)
    relay, adopted_line = handover.enabled(launcher.kind), ""
    adopted: dict[str, str] = {}
    if relay:  # a link of a chain: jobs the last link left queued are this one's
        adopted, adopted_line = handover.adopt(run_dir, mark, renewal, timeout)
        prologue = [*keywords["job_script_prologue"], *handover.prologue(run_dir)]
        keywords["job_script_prologue"] = prologue
        job_cls = handover.relaying(job_cls, adopted)
    elif launcher.kind == "slurm":  # typed by hand: none would join it, none adopt them
        handover.cancel_kept(run_dir, timeout)
    cluster = None
    try:
        # A Ctrl-C waits for the cluster to be whole, and closes it: interrupted half-way,
        # its constructor left the scheduler process to outlive the call.
        with interrupt_held():
            cluster = cluster_class(
                job_cls=watched(job_cls, submissions),
                security=security,
                scheduler_cls=SchedulerProcess,
                scheduler_options=scheduler_options,
                silence_logs=logging.ERROR,
                **keywords,
            )
            cluster.renewal = renewal  # before the first job is asked for (by adapt, below)
            cluster.submissions = submissions
            cluster.handover_fingerprint = mark
            if relay:  # before any job starts: the address its worker joins
                handover.publish(run_dir, cluster.scheduler.address)
                for name in adopted:  # counted as the cluster's own, not submitted
                    cluster.worker_spec[name] = copy.deepcopy(cluster.new_spec)
                cluster.sync(cluster._correct_state_internal)
            # Adaptive also when min == max: it renews a job before it retires (walltime).
            cluster.adapt(Renewing, minimum_jobs=launcher.min_jobs, maximum_jobs=launcher.max_jobs)
            client = Client(cluster, security=security)
    except BaseException:
        if cluster is not None:
            with interrupt_held():  # cut short, it left the scheduler and queued jobs
                cluster.close()
        raise
    jobs = (
        f"{launcher.max_jobs}"
        if launcher.min_jobs == launcher.max_jobs
        else f"{launcher.min_jobs}-{launcher.max_jobs}"
    )
    longest = renewal.longest
    lifetime = (
        f", jobs retire after {longest - renewal.spread:.0f}-{longest:.0f} s (renewed ahead)"
        if longest
        else ""
    )
    desc = (
        f"{launcher.kind} ({launcher.file}): {jobs} job(s) x {launcher.processes} worker(s)"
        f" x 1 trial, {launcher.threads_per_trial} thread(s) per trial{lifetime};"
        f" TLS {'on' if security else 'off'}, scheduler {cluster.scheduler_address}"
    ) + (f"\n{adopted_line}" if adopted_line else "")
    logs = cluster._dummy_job.log_directory or "the jobs' logs"
    return ClusterHandle(
        client,
        cluster,
        launcher.slots,
        launcher.threads_per_trial,
        desc,
        _dashboard(cluster),
        resources={"GPU": 1.0} if launcher.gpus else None,
        watch=Watch(submissions, cluster, str(launcher.file), str(logs)),
        after_close=(lambda: handover.withdraw(run_dir)) if relay else None,
        hand_over=(lambda: handover.hand_over(cluster, run_dir)) if relay else None,
    )


def _dashboard(cluster: Any) -> str | None:
    """The dashboard's URL with the address it listens on (loopback by default), not the
    scheduler's, which Dask would show."""
    scheduler = cluster.scheduler
    if scheduler.dashboard_port is None:
        return None
    host = scheduler.dashboard_host
    if host in ("", "0.0.0.0", "::"):
        host = cluster.scheduler_address.split("://")[-1].rsplit(":", 1)[0]
    return f"http://{host}:{scheduler.dashboard_port}/status"
