"""The ``supervisor`` command. Thin: parses flags, calls the modules, maps errors to exits.

Heavy modules (optuna, dask, TensorFlow) are imported inside the commands so that
``supervisor --help`` stays fast. A UserError prints one line and exits with code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from supervisor.errors import UserError

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


@app.command()
def search(
    space_file: Space,
    study: Annotated[str | None, typer.Option(help="Study name (default: from the file).")] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage URL (default: a journal file in the run directory)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Local worker processes.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Cores per trial.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Use a running Dask scheduler at this address.")
    ] = None,
    dashboard: Annotated[
        str, typer.Option(help="Dask dashboard address (loopback by default).")
    ] = "127.0.0.1:8787",
    trials: Annotated[int | None, typer.Option(min=1, help="Override budget.trials.")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Override budget.timeout (seconds).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override budget.epochs.")] = None,
    prefetch: Annotated[
        int | None, typer.Option(min=0, help="Trials queued beyond the free slots.")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    reports_dir: Annotated[Path, typer.Option(help="Where HTML reports go.")] = Path("reports"),
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip the HTML report.")] = False,
    plain: Annotated[bool, typer.Option(help="Log lines instead of a progress bar.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would run.")
    ] = False,
) -> None:
    """Run a hyper-parameter search; rerun the same command to resume it."""
    from supervisor.campaign import SearchOptions

    opts = SearchOptions(
        space_file=space_file,
        study=study,
        storage=storage,
        runs_root=runs_dir,
        reports_root=reports_dir,
        workers=workers,
        threads=threads,
        scheduler=scheduler,
        dashboard=dashboard,
        prefetch=prefetch,
        trials=trials,
        timeout=timeout,
        epochs=epochs,
        report=not no_report,
        plain=plain,
    )
    if dry_run:
        _describe(opts)
        return
    from supervisor.campaign import search as run_search
    from supervisor.summary import print_summary

    summary, report = run_search(opts)
    print_summary(summary, report)
    if summary.stopped_by == "interrupt":
        raise typer.Exit(130)


@app.command()
def validate(
    space_file: Space,
    study: Annotated[str | None, typer.Option(help="Study name (default: from the file).")] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Check a search-space file and print the resolved space; writes nothing."""
    from supervisor.campaign import SearchOptions

    _describe(SearchOptions(space_file=space_file, study=study, runs_root=runs_dir))


def _describe(opts: object) -> None:
    from supervisor.campaign import SearchOptions, resolve_experiment
    from supervisor.summary import describe_experiment

    assert isinstance(opts, SearchOptions)
    exp = resolve_experiment(opts)
    print(describe_experiment(exp, opts))


@app.command()
def report(
    run: Run,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file.")] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Regenerate the HTML report of a campaign from its storage (also while it runs)."""
    from supervisor import rundir
    from supervisor.report import write_search_report
    from supervisor.storage import load_study

    path, record = rundir.resolve(run, runs_dir)
    study = load_study(record.storage_url(path), record.study)
    out = output or Path("reports") / f"{record.study}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"command": record.command, "space file": record.space_file, "run directory": str(path)}
    print(write_search_report(study, out, info))


@app.command()
def export(
    run: Run,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (.csv or .parquet).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Export every trial (params, values, state, duration, worker, error) to CSV or Parquet."""
    from supervisor import rundir
    from supervisor.export import write_table
    from supervisor.storage import load_study

    if fmt not in ("csv", "parquet"):
        raise UserError(f"--format: expected csv or parquet, got {fmt!r}")
    path, record = rundir.resolve(run, runs_dir)
    study = load_study(record.storage_url(path), record.study)
    out = output or path / f"trials.{fmt}"
    print(write_table(study, out, fmt))


@app.command()
def status(run: Run, runs_dir: RunsDir = Path("runs")) -> None:
    """Counts, best trial and running trials of a campaign, read from its storage."""
    from supervisor import rundir
    from supervisor.status import print_status
    from supervisor.storage import load_study

    path, record = rundir.resolve(run, runs_dir)
    print_status(load_study(record.storage_url(path), record.study))


@app.command()
def benchmarks() -> None:
    """List the registered benchmarks, their metrics and options."""
    from supervisor import registry

    for name, target in sorted(registry.benchmarks().items()):
        cls = registry.load(target)
        metrics = ", ".join(f"{m} ({d})" for m, d in cls.metrics.items())
        print(f"{name}  ({target})\n  metrics: {metrics}")
        for key, opt in cls.options.items():
            print(f"  option {key} = {opt.default!r}: {opt.help}")


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
