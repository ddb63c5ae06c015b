"""One campaign from the command line: validated space -> storage -> cluster -> driver -> report.

Order matters for "nothing written on bad input": the space file, benchmark options and
storage URL are all checked before the run directory is created or a cluster started.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.clusters.addresses import DEFAULT_DASHBOARD
from supervisor.commands import preflight, provenance
from supervisor.commands.packing import calibrated
from supervisor.commands.packing import packing as local_packing
from supervisor.commands.summary import CHAIN_ENV, ensemble_follows
from supervisor.config import space
from supervisor.config.warm_start import WarmSource
from supervisor.errors import Interrupted, UserError
from supervisor.study import stop_request, warm_start
from supervisor.study.signals import interrupt_held

if TYPE_CHECKING:
    import optuna

    from supervisor.clusters.profile import Launcher
    from supervisor.config.experiment import Experiment
    from supervisor.study.driver import Summary


@dataclass
class SearchOptions:
    space_file: str  # "" when the space comes as space_data
    # The space as a mapping (the Python API); kept in the run directory as space.yaml.
    space_data: dict[str, Any] | None = None
    study: str | None = None
    storage: str | None = None
    runs_root: Path = Path("runs")
    reports_root: Path = Path("reports")
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    launcher: str | None = None  # a profile name in launchers/ or a YAML file
    dashboard: str | None = None  # None: the launcher profile's, else DEFAULT_DASHBOARD
    prefetch: int | None = None
    proposer: str = "auto"  # proposals computed beside the driver: auto, on, off
    warm_start: tuple[str, ...] = ()  # runs added to the space file's warm_start
    trials: int | None = None  # overrides budget.trials
    timeout: float | None = None  # overrides budget.timeout
    epochs: int | None = None  # overrides budget.epochs
    report: bool = True
    plain: bool = False
    quiet: bool = False  # no progress output at all
    command: str | None = None  # how the user started it, for the run record and report


PYTHON_API_COMMAND = "supervisor.search() (Python API)"


def redacted_command(command: str) -> str:
    """The command line with the password of any URL in it replaced by ***: it is stored
    in the run record and shown in reports."""
    import shlex

    from supervisor.study.storage import redact

    parts = []
    for part in shlex.split(command):
        flag, eq, value = part.partition("=")
        parts.append(f"{flag}={redact(value)}" if eq and flag.startswith("--") else redact(part))
    return shlex.join(parts)


@dataclass
class Outcome:
    """What a search leaves: its summary, its report, where its run lives."""

    summary: Summary
    report: Path | None
    run_dir: Path
    storage_url: str
    # A signal that stopped the ensemble stage after the search had finished.
    interrupted: Interrupted | None = None


def resolve_experiment(opts: SearchOptions) -> Experiment:
    from dataclasses import replace

    preflight.search_flags(opts)  # the flags first: they are what the user just typed
    if opts.space_data is not None:
        text = space.space_text(opts.space_data)
        exp = space.loads(text, "<space mapping>", opts.study)
    else:
        exp = space.load(opts.space_file, opts.study)
    budget = exp.budget
    if opts.trials is not None:
        budget = replace(budget, trials=opts.trials)
    if opts.timeout is not None:
        budget = replace(budget, timeout=opts.timeout)
    if opts.epochs is not None:
        budget = replace(budget, epochs=opts.epochs)
    listed = {w.run for w in exp.warm_start}
    extra = tuple(WarmSource(run) for run in dict.fromkeys(opts.warm_start) if run not in listed)
    # Here, not only in search(): --dry-run and submit called "--proposer on" with a
    # sampler that cannot use it valid, and the search refused it.
    preflight.proposer_fits(opts.proposer, exp)
    return replace(exp, budget=budget, warm_start=exp.warm_start + extra)


def warm_sources(exp: Experiment, opts: SearchOptions) -> list[warm_start.Source]:
    """The earlier runs a search starts warm from, read and checked (nothing written)."""
    return warm_start.plan(exp, opts.runs_root, opts.runs_root / exp.study_name)


def stored_checks(
    exp: Experiment, opts: SearchOptions, *, validate: bool = False
) -> tuple[list[warm_start.Source], optuna.Study | None]:
    """What ``validate`` and ``search --dry-run`` check against stored runs, as the search
    would (reading only): the warm-start runs, and the run it resumes (its trials may hold
    other parameters or constraints than this space: said "valid", then refused), in a
    journal, an SQLite file or on a database server. ``validate`` (no --storage) checks
    the storage the run records; a dry run is refused where the search would be: with
    another storage than the run's. Also the study it resumes (None: a new run)."""
    from supervisor.study.open_study import checked_study
    from supervisor.study.storage import NoStudies

    run_dir = opts.runs_root / exp.study_name
    if validate:
        url = recorded_storage(run_dir) or rundir.journal_url(run_dir)
    else:  # the search's folders and storage file too: "valid", then refused
        preflight.writable_dir(opts.runs_root, "--runs-dir", probe=False)
        if opts.report:
            preflight.writable_dir(opts.reports_root, "--reports-dir", probe=False)
        if opts.storage is not None:
            preflight.storage_place(opts.storage, probe=False)
        _check_same_storage(run_dir, opts.storage)
        url = opts.storage or rundir.journal_url(run_dir)
    server = "://" in url and not url.startswith("sqlite")  # read-only: creates no tables
    existing = None
    if server or _file_there(url):
        with contextlib.suppress(NoStudies):  # a database without Optuna's tables: new
            existing = checked_study(exp, url, read_only=True)[1]
    return warm_sources(exp, opts), existing


def recorded_storage(run_dir: Path) -> str | None:
    """The storage URL ``run_dir``'s run.json records (None: its journal, or no run)."""
    record_file = run_dir / rundir.RUN_FILE
    if not (record_file.exists() or record_file.is_symlink()):
        return None
    return rundir.absolute_storage(rundir.read_record_file(record_file).storage)


def _file_there(url: str) -> bool:
    """Whether ``url`` is a journal or SQLite file that exists: its study is read without
    creating anything or waiting for a server (a database server the search reaches)."""
    from supervisor.study.storage import JOURNAL_PREFIX

    for prefix in (JOURNAL_PREFIX, "sqlite:///"):
        if url.startswith(prefix):
            return os.path.isfile(url[len(prefix) :])
    return "://" not in url and os.path.isfile(url)


PASSWORD_IN_ARGV = (
    "note: a password on the command line is visible to every user of this machine (ps)"
    " while the search runs; PGPASSWORD or ~/.pgpass keep it private"
)


def search(opts: SearchOptions) -> Outcome:
    import optuna

    from supervisor.clusters.addresses import dashboard_lines
    from supervisor.clusters.launch import enter_allocation, load_launcher, open_cluster
    from supervisor.commands.progress import make_display
    from supervisor.study.driver import Driver
    from supervisor.study.enqueue import enqueue
    from supervisor.study.open_study import checked_study, open_campaign_study
    from supervisor.study.storage import redact

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp = resolve_experiment(opts)
    launcher = load_launcher(
        opts.launcher,
        workers=opts.workers,
        threads=opts.threads,
        scheduler=opts.scheduler,
        trains=(exp.benchmark, exp.benchmark_target),
        dashboard=opts.dashboard,
    )
    # Everything that can refuse the command does so here, before the first write.
    preflight.search_environment(opts, launcher)
    run_dir = opts.runs_root / exp.study_name
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory (the run directory of {exp.study_name!r})")
    rundir.check_owned(run_dir)
    preflight.batch_jobs(launcher, run_dir, exp.study_name)
    _check_same_storage(run_dir, opts.storage)
    provenance.read(run_dir)  # a manifest this run cannot extend is refused now
    if opts.report:
        report_file = opts.reports_root / f"{exp.study_name}.html"
        preflight.output_file(report_file, "--reports-dir", run_dir)
    dashboard = opts.dashboard or DEFAULT_DASHBOARD
    enter_allocation(launcher, dashboard)  # under mpiexec only the driver rank returns
    warm = warm_sources(exp, opts)
    storage_url = opts.storage or rundir.journal_url(run_dir)
    command = redacted_command(opts.command) if opts.command else PYTHON_API_COMMAND
    # A storage elsewhere is reached, and the cluster started, before the run directory
    # is written: a wrong --storage or --scheduler leaves an existing run as it was.
    changes: list[str] = []  # a resume that trains otherwise than its study's trials
    # A resume this space cannot make is refused before the cluster starts (batch jobs
    # queued for nothing); a new run's journal is created only once the cluster is up.
    resumes = opts.storage or (run_dir / rundir.JOURNAL_FILE).is_file()
    checked = checked_study(exp, storage_url) if resumes else None
    study = open_campaign_study(exp, storage_url, changes, checked) if opts.storage else None
    display = make_display(plain=opts.plain, quiet=opts.quiet, timeout=exp.budget.timeout)
    if opts.command and opts.storage and rundir.without_password(opts.storage) != opts.storage:
        display.log(PASSWORD_IN_ARGV)
    started = time.time()
    workers, threads, packing = local_packing(
        opts, exp.benchmark, calibrated(launcher), exp.options, exp.node.to_dict()
    )
    with open_cluster(
        workers=workers,
        threads=threads,
        scheduler=opts.scheduler,
        dashboard=dashboard,
        launcher=launcher,
        run_dir=run_dir,
        study=exp.study_name,
        worker_log=(run_dir / rundir.WORKERS_LOG).resolve(),
    ) as handle:
        # A Ctrl-C waits for the run's files: interrupted half-way, a run had a journal but
        # no run.json (open_run and status found no run) or no manifest.
        with interrupt_held():
            rundir.make_private(run_dir, journal=opts.storage is None)
            if study is None:
                study = open_campaign_study(exp, storage_url, changes, checked)
            space_file = opts.space_file
            if opts.space_data is not None:  # later commands read the space from the run
                space_file = str(run_dir / rundir.SPACE_FILE)
                atomic.write(Path(space_file), space.space_text(opts.space_data), mode=0o600)
            rundir.write_record(
                run_dir, rundir.RunRecord(exp.study_name, opts.storage, space_file, command)
            )
            manifest = provenance.append(
                run_dir,
                provenance.session(
                    command=command,
                    experiment=exp.to_dict(),
                    benchmark_target=exp.benchmark_target,
                    storage=redact(storage_url),
                    cluster=handle.description,
                    launcher=_launcher_record(launcher, handle.cluster),
                ),
            )
        display.log(f"Study {exp.study_name!r}: {exp.benchmark}, storage {redact(storage_url)}")
        display.log(f"{handle.description}{packing}")
        for line in changes:
            display.log(line)
        if handle.worker_log is not None:
            display.log(f"Workers' output: {handle.worker_log}")
        if warm_start.apply(study, warm):
            for source in warm:
                display.log(f"Warm start: {source.line()}")
        chain_link = bool(os.environ.get(CHAIN_ENV))
        if not chain_link and (request := stop_request.read(study)) is not None:
            stop_request.withdraw(study)  # the user asks for this search: it runs
            display.log(f"Withdrew the stop request ({request.line()})")
        if queued := enqueue(study, exp.enqueue):
            display.log(f"Enqueued: {queued} configuration(s) of the space file train first")
        for line in dashboard_lines(handle.dashboard):
            display.log(line)
        driver = Driver(
            exp,
            study,
            handle.client,
            slots=handle.slots,
            threads=handle.threads,
            prefetch=opts.prefetch,
            display=display,
            run_dir=str(run_dir.resolve()),
            resources=handle.resources,
            storage_url=storage_url,
            proposer=preflight.PROPOSER[opts.proposer],
        )
        if handle.watch is not None:  # a batch system refusing every job stops the search
            driver.watch = handle.watch
        if chain_link:  # a stop asked before this link started ends the chain here
            driver.stopping.since = 0.0
        summary = driver.run()
        # A link warned of its walltime: its worker jobs' places in the queue are the next's.
        hand_over = handle.hand_over if chain_link and summary.signal == "SIGUSR1" else None
        if hand_over is not None and (kept := hand_over()):
            display.log(f"Kept {kept} queued worker job(s) for the next driver job")
        cluster_desc = handle.description
        interrupted = None
        if exp.ensemble is not None and ensemble_follows(summary):
            from supervisor.commands.ensemble import ensemble_after_search

            reports = opts.reports_root if opts.report else None
            try:
                built = ensemble_after_search(
                    exp, study, storage_url, run_dir, reports, handle, display
                )
            except Interrupted as stop:  # the search's report is still written
                display.log(str(stop))
                interrupted, built = stop, None
            if built is not None:
                display.log(ensemble_line(built))
    report = None
    if opts.report:
        report = write_report(
            study,
            opts.reports_root,
            {
                "command": command,
                "space file": space_file,
                "storage": redact(storage_url),
                "run directory": str(run_dir),
                "cluster": cluster_desc,
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                "wall time (s)": round(summary.elapsed, 1),
                "stopped by": summary.stopped_by,
                **provenance.summary(provenance.read(run_dir)),
                "manifest": str(manifest),
            },
            run_dir,
        )
    return Outcome(summary, report, run_dir, storage_url, interrupted)


def ensemble_line(built: Any) -> str:
    """The ensemble against its best member on the test set, for the terminal."""
    ev = built.evaluation
    metric = ev.headline
    scores = ", ".join(
        f"{name} {ev.ensemble[name]:.4g} ({ev.best_member[name]:.4g})"
        for name in ev.lower_is_better
        if name in ev.ensemble
    )
    if ev.calibrated:
        ens, one = ev.calibrated["ensemble"], ev.calibrated["best member"]
        scores += (
            f"; after temperature scaling: nll {ens['nll']:.4g} ({one['nll']:.4g}),"
            f" ece {ens['ece']:.4g} ({one['ece']:.4g})"
        )
    return (
        f"Ensemble of {len(built.members)} ({built.select}): test {metric} "
        f"{ev.ensemble[metric]:.4g} vs best single member {ev.best_member[metric]:.4g}\n"
        f"  test, ensemble (best member): {scores}"
        + (f"\n  UQ report: {built.report_path}" if built.report_path else "")
    )


def write_report(
    study: optuna.Study, reports_root: Path, run_info: dict[str, Any], run_dir: Path
) -> Path:
    from supervisor.commands.report import write_reports

    return write_reports(study, reports_root / f"{study.study_name}.html", run_info, run_dir)[-1]


def _launcher_record(launcher: Launcher | None, cluster: Any) -> dict[str, Any] | None:
    """The launcher profile of a batch campaign and the job script its workers run."""
    if launcher is None:
        return None
    record: dict[str, Any] = {"file": str(launcher.file), "kind": launcher.kind}
    script = getattr(cluster, "job_script", None)
    if callable(script):
        record["job_script"] = script()
    return record


def _check_same_storage(run_dir: Path, storage: str | None) -> None:
    """An existing run keeps the storage it was started with: a rerun with another
    ``--storage`` (a typo, most often) would point the run's record elsewhere."""
    record_file = run_dir / rundir.RUN_FILE
    if not (record_file.exists() or record_file.is_symlink()):
        return
    record = rundir.read_record_file(record_file)  # a damaged one is refused, not replaced

    # run.json keeps no password: the same URL with or without one is the same storage.
    def same(url: str | None) -> str | None:
        return rundir.without_password(rundir.absolute_storage(url))

    if same(record.storage) != same(storage):
        from supervisor.study.storage import redact

        was = redact(record.storage) if record.storage else "its journal file"
        now = redact(storage) if storage else "the journal file"
        raise UserError(
            f"{run_dir} was run with storage {was}; this command asks for {now}:"
            " use the same --storage to resume it, or another --study"
        )
