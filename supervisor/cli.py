"""The ``supervisor`` command. Thin: parses flags, calls the modules, maps errors to exits.

Heavy modules (optuna, dask, TensorFlow) are imported inside the commands so that
``supervisor --help`` stays fast. A UserError prints one line and exits with code 2.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.main

from supervisor.errors import Interrupted, UserError

app = typer.Typer(
    name="supervisor",
    help="Hyper-parameter search and ensembles for scientific deep learning on HPC clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Space = Annotated[str, typer.Argument(help="Search-space YAML file.")]
Run = Annotated[str, typer.Argument(help="Run directory (runs/<study>) or study name.")]
RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run directories live.")]
Workers = Annotated[int | None, typer.Option(min=1, help="Local worker processes.")]
Threads = Annotated[int | None, typer.Option(min=1, help="Cores per trial.")]
Scheduler = Annotated[str | None, typer.Option(help="Address of a running Dask scheduler to use.")]
ReportsDir = Annotated[Path, typer.Option(help="Where HTML reports go.")]
Plain = Annotated[bool, typer.Option(help="Log lines instead of a progress bar.")]
Proposer = Annotated[
    str, typer.Option(help="Sampler proposals in a process beside the driver: auto, on, off.")
]
WarmStart = Annotated[
    list[str] | None,
    typer.Option(
        help="An earlier run (directory or study name) whose finished trials the sampler"
        " learns from; repeat for several. Adds to the space file's warm_start."
    ),
]


@app.command()
def search(
    space_file: Space,
    study: Annotated[str | None, typer.Option(help="Study name (default: from the file).")] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage URL (default: a journal file in the run directory)."),
    ] = None,
    workers: Workers = None,
    threads: Threads = None,
    scheduler: Scheduler = None,
    launcher: Annotated[
        str | None,
        typer.Option(
            help="Where workers run: a profile in launchers/ (slurm, pbs, lsf, sge, htcondor,"
            " mpi, local) or a profile YAML file."
        ),
    ] = None,
    dashboard: Annotated[
        str | None, typer.Option(help="Dask dashboard address (default: 127.0.0.1:8787).")
    ] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Override budget.trials.")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Override budget.timeout: seconds, or 30m, 2h, 1h30m, 1d.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override budget.epochs.")] = None,
    prefetch: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Trials queued beyond the free slots (default: adaptive, 0 for long trials).",
        ),
    ] = None,
    proposer: Proposer = "auto",
    warm_start: WarmStart = None,
    runs_dir: RunsDir = Path("runs"),
    reports_dir: ReportsDir = Path("reports"),
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip the HTML report.")] = False,
    plain: Plain = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would run.")
    ] = False,
) -> None:
    """Run a hyper-parameter search; rerun the same command to resume it."""
    from supervisor.api import search_options

    opts = search_options(
        space_file,
        study=study,
        storage=storage,
        runs_dir=runs_dir,
        reports_dir=reports_dir,
        workers=workers,
        threads=threads,
        scheduler=scheduler,
        launcher=launcher,
        dashboard=dashboard,
        prefetch=prefetch,
        proposer=proposer,
        warm_start=tuple(warm_start or ()),
        trials=trials,
        timeout=timeout,
        epochs=epochs,
        report=not no_report,
        progress="plain" if plain else "auto",
        command=shlex.join(["supervisor", *sys.argv[1:]]),
    )
    if dry_run:
        from supervisor.commands.describe import describe_resolved, describe_search

        job_script = None
        if launcher is not None:  # checked before anything is called valid
            job_script = describe_search(opts)
        describe_resolved(opts)
        if job_script is not None:
            print(job_script)
        return
    from supervisor.commands.search import search as run_search
    from supervisor.commands.summary import print_summary

    outcome = run_search(opts)
    summary = outcome.summary
    print_summary(summary, outcome.report)
    stop = outcome.interrupted  # a signal in the ensemble stage, after the search
    code = summary.exit_code or (stop.exit_code if stop else 0)
    if code:
        raise typer.Exit(code)


@app.command()
def validate(
    space_file: Space,
    study: Annotated[str | None, typer.Option(help="Study name (default: from the file).")] = None,
    warm_start: WarmStart = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Check a search-space file and print the resolved space; writes nothing."""
    from supervisor.commands.describe import describe_resolved
    from supervisor.commands.search import SearchOptions

    describe_resolved(
        SearchOptions(
            space_file=space_file,
            study=study,
            runs_root=runs_dir,
            warm_start=tuple(warm_start or ()),
        ),
        validate=True,
    )


@app.command()
def report(
    run: Run,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file.")] = None,
    runs_dir: RunsDir = Path("runs"),
    reports_dir: Annotated[Path | None, typer.Option(help="Where HTML reports go.")] = None,
) -> None:
    """Regenerate the HTML report of a campaign from its storage (also while it runs)."""
    from supervisor.run_reports import write_run_reports

    for path in write_run_reports(run, output, runs_dir, reports_dir):
        print(path)


@app.command()
def ensemble(
    run: Run,
    select: Annotated[
        str | None,
        typer.Option(help="auto, topk, greedy (Caruana, by validation NLL) or seeds."),
    ] = None,
    size: Annotated[int | None, typer.Option(min=1, help="Members of the ensemble.")] = None,
    pool: Annotated[
        int | None, typer.Option(min=1, help="greedy: candidates, the best complete trials.")
    ] = None,
    candidates: Annotated[
        int | None, typer.Option(min=1, help="seeds: the K best, each with --size seeds.")
    ] = None,
    workers: Workers = None,
    threads: Threads = None,
    scheduler: Scheduler = None,
    launcher: Annotated[
        str | None, typer.Option(help="Where members train: a launcher profile or file.")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    reports_dir: ReportsDir = Path("reports"),
    plain: Plain = False,
) -> None:
    """Build a deep ensemble from a finished search and write its UQ report. Members the
    search saved are reused; the others train on the cluster (rerun to resume)."""
    from supervisor.commands.ensemble import EnsembleOptions, run_ensemble
    from supervisor.commands.search import ensemble_line

    opts = EnsembleOptions(
        run=run,
        runs_root=runs_dir,
        reports_root=reports_dir,
        select=select,
        size=size,
        pool=pool,
        candidates=candidates,
        workers=workers,
        threads=threads,
        scheduler=scheduler,
        launcher=launcher,
        plain=plain,
    )
    try:
        built = run_ensemble(opts)
    except Interrupted as stop:  # typer turns a KeyboardInterrupt into a silent exit 130
        print(f"interrupted: {stop}", file=sys.stderr)
        raise typer.Exit(stop.exit_code) from None
    print(ensemble_line(built))
    print(built.summary_path)


@app.command()
def export(
    run: Run,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (.csv, .parquet; .keras, .npz).")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or parquet; with --model, keras or npz.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="A kept trained model instead: a trial number or 'best'."),
    ] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Export every trial (params, values, state, duration, worker, error) to CSV or Parquet;
    with --model, a kept trained model (keep_models) to a .keras or .npz file."""
    if model is not None:
        from supervisor.commands.export_model import export_model

        written = export_model(run, model, output, fmt, runs_dir)
    else:
        from supervisor.commands.export import export as export_trials

        written = export_trials(run, output, fmt, runs_dir)
    for path in written:
        print(path)


@app.command()
def rerun(
    run: Run,
    trial: Annotated[int, typer.Argument(min=0, help="The number of a complete trial.")],
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Train one complete trial again here from what the run stored (space, parameters,
    seeds, threads, node settings) and compare its metrics; exit 1 when they differ."""
    from supervisor.api import open_run

    comparison = open_run(run, runs_dir=runs_dir).rerun(trial)
    print("\n".join(comparison.lines()))
    if not comparison.identical:
        raise typer.Exit(1)


@app.command()
def status(
    run: Run,
    runs_dir: RunsDir = Path("runs"),
    watch: Annotated[
        float | None, typer.Option(min=1, help="Print again every this many seconds.")
    ] = None,
) -> None:
    """Counts, best trial, running trials and ETA of a campaign, read from its storage."""
    from supervisor.commands.show_status import show_status

    show_status(run, runs_dir, watch)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit(
    ctx: typer.Context,
    space_file: Space,
    launcher: Annotated[
        str, typer.Option(help="The workers' launcher profile (slurm) or a profile file.")
    ],
    study: Annotated[str | None, typer.Option(help="Study name (default: from the file).")] = None,
    walltime: Annotated[
        str, typer.Option(help="Walltime of each driver job, [D-]HH:MM:SS.")
    ] = "04:00:00",
    grace: Annotated[
        int, typer.Option(help="Seconds before the walltime that the driver is told to stop.")
    ] = 300,
    max_jobs: Annotated[int, typer.Option(help="Driver jobs in the chain at most.")] = 50,
    partition: Annotated[str | None, typer.Option(help="Partition of the driver job.")] = None,
    account: Annotated[str | None, typer.Option(help="Account to charge.")] = None,
    prologue: Annotated[
        list[str] | None,
        typer.Option(help="A shell line before the driver starts (module load ...); repeat."),
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the driver's job script; submit nothing.")
    ] = False,
) -> None:
    """Run the search's driver as a Slurm job that renews itself until the budget is done
    (for campaigns longer than a login node or one walltime allows). Flags after `--` go
    to `supervisor search`."""
    from supervisor.commands.submit import SubmitOptions, run

    opts = SubmitOptions(
        space_file=space_file,
        launcher=launcher,
        search_args=[*(["--study", study] if study is not None else []), *ctx.args],
        study=study or "",  # the search's, once its flags are checked
        runs_root=runs_dir,
        walltime=walltime,
        grace=grace,
        max_jobs=max_jobs,
        partition=partition,
        account=account,
        prologue=prologue or [],
        dry_run=dry_run,
    )
    print(run(opts, typer.main.get_command(app)), end="")


SINCE_HELP = "Trials done when this link started; exit 0: budget done, 3: progress made, 4: none."


@app.command(hidden=True)
def chain(
    run: Run,
    count: Annotated[bool, typer.Option(help="Print the trials done so far.")] = False,
    since: Annotated[int | None, typer.Option(help=SINCE_HELP)] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Used by the driver's job script: trials done, and whether to submit the next link
    (exit 0: done; 3: progress made, go on; 4: no progress, stop)."""
    import supervisor.rundir as rundir
    from supervisor.api import open_run
    from supervisor.commands.submit import after_link

    record = Path(run) / rundir.RUN_FILE
    if not (record.exists() or record.is_symlink()):  # the first link starts the run
        done, left = 0, None
    else:
        status = open_run(run, runs_dir=runs_dir).status()
        done, left = status.done, status.left
    if count:
        print(done)
    if since is not None:
        raise typer.Exit(after_link(Path(run), since, done, left))


@app.command()
def calibrate(
    benchmark: Annotated[
        str, typer.Argument(help="Benchmark name (see `supervisor benchmarks`).")
    ],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Benchmark option KEY=VALUE (YAML value); repeat."),
    ] = None,
    tiny: Annotated[
        bool, typer.Option(help="Use the benchmark's tiny data (quick check).")
    ] = False,
    epochs: Annotated[int, typer.Option(min=1, help="Timed epochs per measurement.")] = 1,
    cores: Annotated[int | None, typer.Option(min=1, help="Use at most this many cores.")] = None,
    write: Annotated[
        Path | None, typer.Option(help="Also write the result into this launcher profile.")
    ] = None,
    probe_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds the first probe (a trial alone) may take.")
    ] = 3600,
) -> None:
    """Measure samples/s over (threads per trial x trials per node) on this node and
    recommend the packing with the highest aggregate throughput. The result is saved
    for this host: `supervisor search` on it then packs trials that way."""
    from supervisor.commands.calibration import calibrate as run_calibrate

    run_calibrate(benchmark, option or [], tiny, epochs, cores, write, probe_timeout)


@app.command()
def benchmarks() -> None:
    """List the registered benchmarks, their metrics and options."""
    from supervisor.commands.benchmark_list import list_benchmarks

    print(list_benchmarks())


@app.command()
def stop(
    run: Run,
    now: Annotated[
        bool, typer.Option(help="Cancel the running trials too (queued again, as Ctrl-C).")
    ] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Ask every driver of a campaign to stop, wherever it runs: no new trials, running
    ones finish. A `supervisor search` or `submit` you type later withdraws it."""
    from supervisor.api import open_run

    print(open_run(run, runs_dir=runs_dir).stop(now=now))


def main() -> None:
    from supervisor.commands.argv import ClickException, error_line, readable_help, refuse_repeated
    from supervisor.study import journal_snapshot

    journal_snapshot.hold()  # the storages the command opens, for a snapshot once it succeeded
    args = sys.argv[1:]
    command = readable_help(typer.main.get_command(app))
    if not args:  # the help, as typer shows it
        command(prog_name="supervisor")
    try:
        refuse_repeated(command, args)
        code = command(args, prog_name="supervisor", standalone_mode=False)
    except ClickException as exc:  # click's usage errors: one line
        print(error_line(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except UserError as exc:
        print(error_line(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:  # e.g. a full disk or a read-only run directory
        print(error_line(exc), file=sys.stderr)
        sys.exit(1)
    if isinstance(code, int) and code:  # typer.Exit(n) outside standalone mode
        sys.exit(code)
    journal_snapshot.save_opened()  # a long journal this command read opens fast next time


if __name__ == "__main__":
    main()
