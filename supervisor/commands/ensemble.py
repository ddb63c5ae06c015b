"""``supervisor ensemble RUN``, and the ensemble stage of ``supervisor search``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
from supervisor.config.ensemble import EnsembleConfig

if TYPE_CHECKING:
    import optuna

    from supervisor.clusters.handle import ClusterHandle
    from supervisor.config.experiment import Experiment
    from supervisor.ensemble.aggregate import Built


@dataclass
class EnsembleOptions:
    run: str
    runs_root: Path = Path("runs")
    reports_root: Path = Path("reports")
    select: str | None = None  # overrides the space file's ensemble section
    size: int | None = None
    pool: int | None = None
    candidates: int | None = None
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    launcher: str | None = None
    dashboard: str = "127.0.0.1:8787"
    plain: bool = False
    quiet: bool = False  # no progress output at all (the Python API's progress="none")


def check_flags(opts: EnsembleOptions) -> None:
    """The flags alone, before the run is read."""
    from supervisor.commands.preflight import count
    from supervisor.config import ensemble as cfg
    from supervisor.errors import UserError

    if opts.select is not None and opts.select not in cfg.SELECTIONS:
        raise UserError(f"--select {opts.select!r}: expected one of {', '.join(cfg.SELECTIONS)}")
    flags = (("--size", opts.size), ("--pool", opts.pool), ("--candidates", opts.candidates))
    for flag, value in flags:
        if value is not None:  # the space file's limits hold for the flags too
            count(value, flag, 1, cfg.MAX_SIZE)
    if opts.pool is not None and opts.select in ("topk", "seeds"):  # else ignored in silence
        raise UserError(
            f"--pool {opts.pool}: applies to --select greedy (and auto, where it picks"
            f" greedy) only; --select {opts.select} does not use it"
        )


def config_for(exp: Experiment, opts: EnsembleOptions) -> EnsembleConfig:
    """The space file's ``ensemble:`` section (or the defaults), with the flags on top."""
    from supervisor.config.ensemble import SELECTIONS
    from supervisor.errors import UserError

    check_flags(opts)
    base = exp.ensemble or EnsembleConfig()
    select = opts.select or base.select
    assert select in SELECTIONS  # check_flags refused others; narrows the type
    size = opts.size if opts.size is not None else base.size
    pool = opts.pool if opts.pool is not None else max(base.pool, size)
    # The file's finalists belong to its ``seeds``: another --select leaves them out.
    candidates = base.candidates if select == "seeds" else 1
    candidates = opts.candidates if opts.candidates is not None else candidates
    if opts.pool is not None and select in ("topk", "seeds"):  # --select's: check_flags
        raise UserError(
            f"--pool {opts.pool}: applies to select greedy only; the space file's"
            f" ensemble.select is {select} (add --select greedy to use it)"
        )
    if candidates > 1 and select != "seeds":
        raise UserError(f"--candidates {candidates}: applies to --select seeds only")
    return replace(base, select=select, size=size, pool=pool, candidates=candidates)


def as_searched(study: optuna.Study, space_file: str) -> Experiment:
    """The experiment the search ran: rebuilt from the space stored with the study (the
    file may have been edited since; a study of an older supervisor has none, and the
    file is read), with the epochs it trained for (``search --epochs`` overrides the
    file; members must train as long as the trials they stand beside)."""
    from supervisor.config import space
    from supervisor.study import attrs

    stored = study.user_attrs.get(attrs.CONFIG)
    stored = stored if isinstance(stored, dict) else {}
    source = stored.get("source")
    if isinstance(source, dict):
        name = f"the space stored with study {study.study_name!r}"
        exp = space.loads(space.space_text(source), name, study.study_name)
    else:
        exp = space.load(space_file, study.study_name)
    epochs = (stored.get("budget") or {}).get("epochs")
    if isinstance(epochs, int) and epochs != exp.budget.epochs:
        return replace(exp, budget=replace(exp.budget, epochs=epochs))
    return exp


def run_ensemble(opts: EnsembleOptions) -> Built:
    import optuna

    import supervisor.rundir as rundir
    from supervisor.clusters.addresses import dashboard_lines
    from supervisor.clusters.launch import load_launcher, open_cluster
    from supervisor.commands import preflight
    from supervisor.commands.progress import make_display
    from supervisor.ensemble.build import build
    from supervisor.study.storage import load_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_dir, record = rundir.resolve(opts.run, opts.runs_root)
    # Its members, ensemble.json and workers' output go into the run: as a search's, it
    # must be this user's own, not a colleague's writable one nor a link elsewhere.
    rundir.check_owned(run_dir)
    check_flags(opts)
    storage_url = record.storage_url(run_dir)
    study = load_study(storage_url, record.study)  # read only
    exp = as_searched(study, record.space_file)
    config = config_for(exp, opts)
    launcher = load_launcher(
        opts.launcher,
        workers=opts.workers,
        threads=opts.threads,
        scheduler=opts.scheduler,
        trains=(exp.benchmark, exp.benchmark_target),
    )
    preflight.cluster_environment(
        opts.workers, opts.threads, opts.scheduler, launcher, opts.dashboard
    )
    preflight.writable_dir(run_dir, "RUN")  # members and ensemble.json go there
    preflight.batch_jobs(launcher, run_dir, exp.study_name)  # jobs it would refuse
    preflight.writable_dir(opts.reports_root, "--reports-dir")
    display = make_display(plain=opts.plain, quiet=opts.quiet)

    @contextlib.contextmanager
    def cluster() -> Iterator[ClusterHandle]:
        with open_cluster(
            workers=opts.workers,
            threads=opts.threads,
            scheduler=opts.scheduler,
            dashboard=opts.dashboard,
            launcher=launcher,
            run_dir=run_dir,
            study=exp.study_name,
            worker_log=(run_dir / rundir.WORKERS_LOG).resolve(),
        ) as handle:
            display.log(handle.description)
            if handle.worker_log is not None:
                display.log(f"Workers' output: {handle.worker_log}")
            for line in dashboard_lines(handle.dashboard):  # --dashboard was never shown
                display.log(line)
            yield handle

    built = build(exp, config, study, storage_url, run_dir, cluster, display)
    write_uq(built, opts.reports_root, study.study_name)
    info = {
        "command": record.command,
        "space file": record.space_file,
        "run directory": str(run_dir),
    }
    _refresh_campaign_report(study, opts.reports_root, run_dir, info)
    return built


def ensemble_after_search(
    exp: Experiment,
    study: optuna.Study,
    storage_url: str,
    run_dir: Path,
    reports_root: Path | None,
    handle: ClusterHandle,
    display: Any,
) -> Built | None:
    """The ``ensemble:`` stage of a search, on its cluster. A failure is reported and
    leaves the search's results as they are (``supervisor ensemble RUN`` retries it)."""
    from supervisor.ensemble.build import build
    from supervisor.errors import UserError

    assert exp.ensemble is not None

    @contextlib.contextmanager
    def cluster() -> Iterator[ClusterHandle]:
        yield handle

    try:
        built = build(exp, exp.ensemble, study, storage_url, run_dir, cluster, display)
    except (UserError, ValueError) as exc:
        display.log(f"Ensemble not built: {exc}")
        return None
    if reports_root is not None:
        write_uq(built, reports_root, study.study_name)
    return built


def write_uq(built: Built, reports_root: Path, study_name: str) -> None:
    """The UQ report of ``built``, beside the campaign report."""
    from supervisor.report.uq import uq_path, write_uq_report

    atomic.folder(reports_root)
    built.report_path = write_uq_report(built, uq_path(reports_root, study_name), study_name)


def _refresh_campaign_report(
    study: optuna.Study, reports_root: Path, run_dir: Path, info: dict[str, Any]
) -> None:
    """The campaign report links to the UQ report once it exists: rewrite it if present
    (as ``supervisor report`` would)."""
    from supervisor.report.search import write_search_report

    path = reports_root / f"{study.study_name}.html"
    if path.is_file():
        write_search_report(study, path, info, run_dir=run_dir)
