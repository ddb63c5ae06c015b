"""What a launcher profile would start, for ``search --dry-run``: nothing is started or written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.clusters.profile import Launcher

if TYPE_CHECKING:
    from supervisor.commands.search import SearchOptions
    from supervisor.config.experiment import Experiment


def describe_launcher(
    launcher: Launcher, run_dir: Path, study: str, local: str | None = None
) -> str:
    """``local``: the packing a local profile's cluster gets (``local_packing``)."""
    head = f"launcher    {launcher.file} ({launcher.kind})"
    if launcher.kind == "local":
        sizes = ", ".join(f"{k} {v}" for k, v in launcher.extra.items()) or "sized to this machine"
        return f"{head}: a local Dask cluster on loopback, {local or sizes}"
    tls = "TLS with a per-campaign certificate" if launcher.tls is True else "TLS"
    tls = tls if launcher.tls else "no TLS"
    if launcher.kind == "mpi":
        threads = launcher.extra.get("threads", 1)
        return (
            f"{head}: under mpiexec -n N, rank 0 scheduler, rank 1 driver, ranks 2..N-1 one"
            f" worker each ({threads} thread(s) per trial); {tls}"
        )
    from supervisor.clusters.jobqueue import job_script, make_renewal

    renewal = make_renewal(launcher)
    lifetime = (
        f"jobs retire after {renewal.longest - renewal.spread:.0f}-{renewal.longest:.0f} s,"
        " each replaced ahead of its end"
        if renewal.longest
        else "workers live as long as their job"
    )
    walltime = f" (walltime {launcher.walltime:.0f} s)" if launcher.walltime else ""
    lines = [
        f"{head}: {launcher.min_jobs} to {launcher.max_jobs} job(s) (adaptive),"
        f" each {launcher.cores} core(s) for {launcher.processes} worker(s) x 1 trial,"
        f" {launcher.threads_per_trial} thread(s) per trial",
        f"            {lifetime}{walltime}; {tls}",
        "job script  (each job is submitted with):",
        job_script(launcher, run_dir, study).rstrip(),
    ]
    return "\n".join(lines)


def describe_search(opts: SearchOptions) -> str:
    """The launcher part of ``search --dry-run``."""
    from supervisor.clusters.launch import load_launcher
    from supervisor.commands.search import resolve_experiment

    exp = resolve_experiment(opts)
    launcher = load_launcher(
        opts.launcher,
        workers=opts.workers,
        threads=opts.threads,
        scheduler=opts.scheduler,
        trains=(exp.benchmark, exp.benchmark_target),
        dashboard=opts.dashboard,
    )
    assert launcher is not None
    study = exp.study_name
    local = local_packing(opts, exp, launcher) if launcher.kind == "local" else None
    return describe_launcher(launcher, opts.runs_root / study, study, local)


def local_packing(opts: SearchOptions, exp: Experiment, launcher: Launcher) -> str:
    """The workers and threads a local profile's cluster gets, as the search resolves them:
    one that sizes nothing takes this host's calibration, which its dry run called "sized
    to this machine" (every core) while the search ran the calibrated packing."""
    from supervisor.clusters.local import local_size
    from supervisor.commands.packing import calibrated, packing

    workers, threads, note = packing(
        opts, exp.benchmark, calibrated(launcher), exp.options, exp.node.to_dict()
    )
    n, per = local_size(
        workers or launcher.extra.get("workers"), threads or launcher.extra.get("threads")
    )
    return f"{n} workers x {per} thread(s) per trial{note}"


def describe_resolved(opts: SearchOptions, validate: bool = False) -> None:
    """Print the resolved space and the warm-start sources (``validate``, ``--dry-run``),
    after the checks a resume of the stored study would make."""
    from supervisor.commands.resume_plan import resume_plan
    from supervisor.commands.search import recorded_storage, resolve_experiment, stored_checks
    from supervisor.commands.summary import describe_experiment

    exp = resolve_experiment(opts)
    warm, stored = stored_checks(exp, opts, validate=validate)
    resumed, changes = None, []
    if stored is not None:
        from supervisor.study.open_study import resume_changes
        from supervisor.study.warm_start import earlier

        resumed = resume_plan(stored, exp)
        earlier(stored, warm)  # a source an earlier start added is not added again
        # The note the search prints when the resume trains otherwise than the study's
        # trials (other epochs, fixed values, options): its dry run said nothing of it.
        changes = resume_changes(stored, exp)
    if validate and (recorded := recorded_storage(opts.runs_root / exp.study_name)):
        # What it read: the run's storage, not the journal file it named ("exists: the
        # search resumes" of a journal that is not there, the study in a database).
        opts = replace(opts, storage=recorded)
    print(describe_experiment(exp, opts, resumed))
    for source in warm:
        print(f"Warm start: {source.line()}")
    for line in changes:
        print(line)
