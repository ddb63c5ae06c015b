"""The Python API: run a search and look at its results from a script or a notebook.

Everything the ``supervisor`` command does goes through here; the command only parses
flags and prints. Importing this module is cheap: Optuna, Dask and pandas load when a
function needs them. A search of Branin's function, 8 trials on one local worker:

>>> import supervisor
>>> run = supervisor.search(
...     {
...         "study": "branin",
...         "benchmark": {"name": "supervisor.benchmarks.functions:TestFunction"},
...         "objectives": ["regret"],
...         "params": {"x0": {"type": "float", "low": 0, "high": 1},
...                    "x1": {"type": "float", "low": 0, "high": 1}},
...         "budget": {"trials": 8, "epochs": 1},
...         "sampler": "random",
...     },
...     workers=1, progress="none", report=False,
... )
>>> len(run.trials), run.summary.stopped_by
(8, 'budget')
>>> sorted(run.best.params)
['x0', 'x1']
>>> supervisor.open_run("branin").status().done
8
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.arguments import (
    as_int,
    check_flags,
    check_path,
    check_progress,
    check_text,
    run_names,
    space_data,
    trial_number,
)
from supervisor.benchmarks.trust import reads_run
from supervisor.caller_state import callers_optuna_logging, here
from supervisor.errors import Interrupted, UserError

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.trial import FrozenTrial

    from supervisor.benchmarks import Benchmark
    from supervisor.commands.rerun import Comparison
    from supervisor.commands.search import SearchOptions
    from supervisor.commands.status import Status
    from supervisor.config.experiment import Experiment
    from supervisor.ensemble.aggregate import Built
    from supervisor.study.driver import Summary


@dataclass
class Run:
    """One campaign: its run directory, its storage and what was learned so far.

    Read-only views (``trials``, ``best``, ``status()``) read the storage each time, so a
    ``Run`` opened beside a running search shows its progress. ``study`` is the Optuna
    study itself, for Optuna's own tools; the supervisor's driver is its only writer.
    """

    study_name: str
    run_dir: Path
    storage_url: str = field(repr=False)  # may hold a password: a notebook keeps reprs
    reports_dir: Path = Path("reports")
    #: The search that returned this run (``search()``); None for ``open_run``.
    summary: Summary | None = None
    #: The campaign report that search wrote, if any.
    report_path: Path | None = None
    _record: rundir.RunRecord | None = field(default=None, repr=False)
    # Where relative paths above started: a notebook's %cd since does not move the run.
    _cwd: Path | None = field(default_factory=lambda: here(), repr=False)

    def _at(self, path: str | Path) -> Path:
        """``path`` as meant when this Run was made (a notebook may have changed directory
        since: the manifest was "missing", reports went to the new directory)."""
        path = Path(path)
        if path.is_absolute() or self._cwd is None or here() == self._cwd:
            return path
        return self._cwd / path

    def _url(self) -> str:
        """The storage URL as meant when this Run was made (a relative SQLite file)."""
        prefix = "sqlite:///"
        url = self.storage_url
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self._at(url[len(prefix) :]))
        return url

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (a fresh read of the storage)."""
        from supervisor.study.storage import load_study

        return load_study(self._url(), self.study_name)

    @property
    def trials(self) -> pd.DataFrame:
        """Every trial, one row each: number, state, objectives, ``params_*``, measured
        ``metric_*`` and where and how it ran (worker, duration, failure, error)."""
        from supervisor.study.export import trials_frame

        return trials_frame(self.study)

    @property
    def best(self) -> FrozenTrial:
        """The best complete trial of a single-objective search (of those that keep the
        space file's constraints). A multi-objective search has a Pareto front instead:
        see ``best_trials``."""
        study = self.study
        if len(study.directions) > 1:
            raise UserError(
                f"study {self.study_name!r} has {len(study.directions)} objectives: "
                "use Run.best_trials (the Pareto front)"
            )
        try:
            return study.best_trial  # Optuna's: of the trials that keep the constraints
        except ValueError:  # none complete, or none that keeps the constraints
            from optuna.trial import TrialState

            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            what = "keeps the constraints" if complete else "is complete"
            raise UserError(f"study {self.study_name!r}: no trial {what} yet") from None

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto-optimal complete trials (the best trial for one objective), of
        those that keep the constraints."""
        import supervisor.optuna_internals as internals

        study = self.study  # a fresh storage: its trials are the caller's, uncopied
        # Not study.best_trials: it deep-copies every trial of the study first.
        return internals.pareto_front(study.get_trials(deepcopy=False), study.directions)

    @property
    def manifest(self) -> dict[str, Any] | None:
        """Where the results came from (``runs/<study>/manifest.json``): every session's
        command, resolved space, package versions, git commits, host and cluster."""
        from supervisor.commands import provenance

        return provenance.read(self._at(self.run_dir))

    @property
    def record(self) -> rundir.RunRecord:
        """The run's ``run.json``: its study, storage, space file and command."""
        if self._record is None:
            self._record = rundir.read_record(self._at(self.run_dir))
        return self._record

    def _space_file(self) -> str:
        return str(self._at(self.record.space_file)) if self.record.space_file else ""

    def status(self) -> Status:
        """Counts, best trial, running trials and throughput, as ``supervisor status``."""
        from supervisor.commands.status import read_status

        return read_status(self.study)

    def stop(self, now: bool = False) -> str:
        """Ask every driver of this campaign to stop, wherever it runs, as ``supervisor
        stop``: no new trials, running ones finish (``now``: cancelled and queued again);
        what will happen, in words."""
        from supervisor.commands.stop import stop_campaign

        if not isinstance(now, bool):
            raise UserError(f"now: expected True or False, got {now!r}"[:200])
        return stop_campaign(self.study, now, self.run_dir)

    @reads_run
    def report(self, output: str | Path | None = None) -> list[Path]:
        """Write the campaign report (and the Pareto report of several objectives) from
        storage; the paths written, the campaign report last."""
        from supervisor.commands.preflight import run_files
        from supervisor.commands.report import report_output, write_reports

        if output is not None:
            check_path("output", output)
        run_dir, reports = self._at(self.run_dir), self._at(self.reports_dir)
        out = Path(output) if output is not None else reports / f"{self.study_name}.html"
        record = self.record
        # Checked before the storage is read: a bad path fails at once and writes nothing.
        flag = "--output" if output is not None else "report"
        report_output(out, flag, run_dir, run_files(run_dir, record))
        info = {"run directory": str(run_dir)}
        info = {"command": record.command, "space file": record.space_file, **info}
        return write_reports(self.study, out, info, run_dir)

    def ensemble(
        self,
        select: str | None = None,
        size: int | None = None,
        pool: int | None = None,
        *,
        candidates: int | None = None,
        workers: int | None = None,
        threads: int | None = None,
        scheduler: str | None = None,
        launcher: str | None = None,
        progress: str = "auto",
    ) -> Built:
        """Build a deep ensemble of this search and write its UQ report, as
        ``supervisor ensemble``: members the search saved are reused, the others train.
        ``candidates`` (``select="seeds"``): the best configurations trained with every
        seed, the best on average becoming the ensemble."""
        from supervisor.commands.ensemble import EnsembleOptions, run_ensemble

        check_progress(progress)
        check_text("scheduler", scheduler)
        check_text("launcher", launcher)
        with callers_optuna_logging():
            return run_ensemble(
                EnsembleOptions(
                    run=str(self._at(self.run_dir)),
                    runs_root=self._at(self.run_dir).parent,
                    reports_root=self._at(self.reports_dir),
                    select=select,
                    size=as_int(size),
                    pool=as_int(pool),
                    candidates=as_int(candidates),
                    workers=as_int(workers),
                    threads=as_int(threads),
                    scheduler=scheduler,
                    launcher=launcher,
                    plain=progress == "plain",
                    quiet=progress == "none",
                )
            )

    @reads_run
    def rerun(self, trial: int) -> Comparison:
        """Train complete trial ``trial`` again here, from what the run stored (space,
        parameters, seeds, threads, node settings), as ``supervisor rerun``; the
        comparison of its final metrics with the stored ones (``.identical``)."""
        from supervisor.commands.rerun import rerun

        trial = trial_number(trial)
        return rerun(self.study, self._space_file(), trial)

    @property
    def kept_models(self) -> list[int]:
        """The trials whose trained models the run keeps (``keep_models`` in the space
        file), best first; ``model(trial)`` loads one."""
        from supervisor.study.kept_models import kept_in

        return kept_in(self.study, self._at(self.run_dir))

    @reads_run
    def model(self, trial: int | None = None) -> Any:
        """Trial ``trial``'s trained model (default: the best kept), rebuilt as the trial
        built it (benchmark options, parameters, seed, node's precision and XLA) with the
        weights its worker saved; for a Keras benchmark, a ``keras.Model``.
        ``benchmark(trial).predict(model, x)`` uses it as the campaign did. Only trials
        ``keep_models`` kept have one."""
        from supervisor.commands.kept_model import best_kept, load_model

        if trial is not None:
            trial = trial_number(trial)
        if trial is None:
            trial = best_kept(self.study, self._at(self.run_dir))
        return load_model(self.study, self._space_file(), self._at(self.run_dir), trial)[1]

    @reads_run
    def ensemble_models(self) -> list[Any]:
        """The trained models of the ensemble last built (``ensemble(...)``, or after the
        search), in its members' order; each predicts with ``benchmark().predict``. The
        members trained for the ensemble are kept when the space file has
        ``keep_models``; those taken from the search, when among its kept best."""
        from supervisor.commands.kept_model import ensemble_models

        return ensemble_models(self._url(), self._space_file(), self._at(self.run_dir))

    @reads_run
    def benchmark(self, trial: int | None = None) -> Benchmark:
        """The run's benchmark with the options it searched with (``load_data`` for its
        data); ``trial``: with those that trial trained with (``predict`` on its kept
        model, where a resume changed the options since)."""
        from supervisor.commands.kept_model import benchmark_of

        number = None if trial is None else trial_number(trial)
        return benchmark_of(self.study, self._space_file(), number)

    def _repr_html_(self) -> str:  # a notebook shows the run as a small table
        from html import escape

        status = self.status()
        states = ", ".join(f"{n} {s.lower()}" for s, n in status.states.items() if n)
        rows = [
            ("study", self.study_name),
            ("run directory", str(self.run_dir)),
            ("trials", f"{status.done} of {status.requested or '?'} ({states})"),
        ]
        if status.best_number is not None:
            values = ", ".join(f"{v:.4g}" for v in status.best_values)
            origin = f" ({status.best_origin})" if status.best_origin else ""
            rows.append(("best", f"trial {status.best_number}{origin}: {values}"))
        body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


def _import_optuna() -> None:
    """Optuna imports tqdm.auto, which in a Jupyter kernel without ipywidgets warns on
    stderr (a red box asking to "update jupyter and ipywidgets") in the first cell that
    runs a search: nothing here draws a tqdm bar, so that warning is kept out."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import optuna  # noqa: F401


def open_run(run: str | Path, *, runs_dir: str | Path = "runs") -> Run:
    """The campaign at a run directory (``runs/<study>``) or of a study name under
    ``runs_dir``, as ``supervisor status RUN`` finds it."""
    _import_optuna()
    if not isinstance(run, str | Path):
        raise UserError(f"run: expected a run directory or a study name, got {run!r}"[:200])
    check_path("runs_dir", runs_dir)
    path, record = rundir.resolve(str(run), Path(runs_dir))
    return Run(
        study_name=record.study,
        run_dir=path,
        storage_url=record.storage_url(path),
        _record=record,
    )


def search(
    space: str | Path | Mapping[str, Any] | Experiment,
    *,
    study: str | None = None,
    storage: str | None = None,
    trials: int | None = None,
    epochs: int | None = None,
    timeout: float | str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    launcher: str | None = None,
    dashboard: str | None = None,
    prefetch: int | None = None,
    proposer: str = "auto",
    warm_start: Sequence[str | Path] = (),
    runs_dir: str | Path = "runs",
    reports_dir: str | Path = "reports",
    report: bool = True,
    progress: str = "auto",
) -> Run:
    """Run (or resume) a search, as ``supervisor search``, and return its ``Run``.

    ``space`` is a space file, the same content as a mapping, or an ``Experiment``
    (``supervisor.config.space.load``); it is validated as the command validates a file,
    and a mapping or an ``Experiment`` is kept in the run directory as ``space.yaml`` so
    that later commands (``status``, ``ensemble``, a resume) find it. The keyword
    arguments are the command's flags (``warm_start``: earlier runs, as ``--warm-start``).
    ``progress``: "auto" (a bar on a terminal, a live line in a notebook), "plain" (a line
    per trial) or "none". A signal (Ctrl-C, a notebook's interrupt) stops it cleanly and
    raises ``supervisor.Interrupted``, a ``KeyboardInterrupt`` whose ``run`` is the campaign.
    """
    from supervisor.commands.search import search as run_search

    _import_optuna()
    opts = search_options(
        space,
        study=study,
        storage=storage,
        trials=trials,
        epochs=epochs,
        timeout=timeout,
        workers=workers,
        threads=threads,
        scheduler=scheduler,
        launcher=launcher,
        dashboard=dashboard,
        prefetch=prefetch,
        proposer=proposer,
        warm_start=run_names(warm_start),
        runs_dir=runs_dir,
        reports_dir=reports_dir,
        report=report,
        progress=progress,
    )
    with callers_optuna_logging():
        outcome = run_search(opts)
    run = Run(
        study_name=outcome.run_dir.name,
        run_dir=outcome.run_dir,
        storage_url=outcome.storage_url,
        reports_dir=Path(reports_dir),
        summary=outcome.summary,
        report_path=outcome.report,
        _record=rundir.read_record(outcome.run_dir),
    )
    summary = outcome.summary
    if outcome.interrupted is not None:
        outcome.interrupted.run = run
        raise outcome.interrupted
    if summary.stopped_by == "interrupt":
        # Raised, not returned: a script's loop of searches or a notebook's "run all"
        # stops at the interrupt, as it would anywhere else in Python.
        signal = summary.signal or "SIGINT"
        raise Interrupted(
            f"search {run.study_name!r} stopped by {signal} with {summary.finished} of"
            f" {summary.requested} trials finished; its running trials are recorded and"
            " queued again: the same call resumes it",
            signal,
            run,
        )
    return run


def search_options(
    space: str | Path | Mapping[str, Any] | Experiment,
    *,
    runs_dir: str | Path = "runs",
    reports_dir: str | Path = "reports",
    progress: str = "auto",
    command: str | None = None,
    **flags: Any,
) -> SearchOptions:
    """The options of a search, from ``search``'s arguments (and the command line's)."""
    from supervisor.commands.search import SearchOptions

    check_progress(progress)
    check_path("runs_dir", runs_dir)
    check_path("reports_dir", reports_dir)
    check_flags(flags)
    return SearchOptions(
        space_file=str(space) if isinstance(space, (str, Path)) else "",
        space_data=space_data(space),
        runs_root=Path(runs_dir),
        reports_root=Path(reports_dir),
        plain=progress == "plain",
        quiet=progress == "none",
        command=command,
        **flags,
    )
