"""Choose and start the cluster of a command: a launcher profile, an existing scheduler,
or the local default; ``open_cluster`` closes what it started."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.clusters.addresses import on_loopback
from supervisor.clusters.handle import ClusterHandle, configure_dask
from supervisor.errors import UserError
from supervisor.study.signals import interrupt_held

if TYPE_CHECKING:
    from supervisor.clusters.profile import Launcher


def workers_with_scheduler(workers: int | None, scheduler: str | None) -> None:
    """``--workers`` with ``--scheduler`` is refused: the workers that joined the scheduler
    run the trials, and the count was ignored in silence."""
    if scheduler and workers:
        raise UserError(
            f"--workers {workers}: sizes a local cluster; with --scheduler the workers that"
            " joined it run the trials (leave --workers out)"
        )


def load_launcher(
    ref: str | None,
    *,
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    trains: tuple[str, str] | None = None,
    dashboard: str | None = None,
) -> Launcher | None:
    """The validated profile of ``--launcher`` (None without one), checked against the
    other cluster options of the command line (``dashboard``: ``--dashboard`` if given)
    and, ``trains``: (benchmark, its target), against the benchmark its trials train."""
    workers_with_scheduler(workers, scheduler)
    if ref is None:
        return None
    from supervisor.clusters import profile
    from supervisor.clusters.profile_calibration import check_calibrated_for

    if scheduler:
        raise UserError("--launcher and --scheduler exclude each other: choose one")
    launcher = profile.load(ref)
    if dashboard is not None and launcher.dashboard:  # the profile's won in silence
        raise UserError(
            f"--dashboard {dashboard!r}: {launcher.file} sets dashboard"
            f" {launcher.dashboard!r} too; give one (--dashboard or the profile's key)"
        )
    if launcher.kind != "local" and (workers or threads):
        raise UserError(
            f"--workers/--threads size the local cluster; {launcher.file} is a {launcher.kind}"
            " profile: set its cores, processes and max_jobs (or threads) instead"
        )
    if trains is not None and not (workers and threads):  # both flags: it sizes nothing
        check_calibrated_for(launcher.file, launcher.calibration, *trains)
    if launcher.is_jobqueue:  # its values go into job scripts: each must stay in its place
        from supervisor.clusters.jobqueue import check_script_values

        check_script_values(launcher)
    return launcher


def enter_allocation(launcher: Launcher | None, dashboard: str) -> None:
    """Under mpiexec every rank runs the command: all but the driver rank become the
    scheduler or a worker here and never return. Call before anything is written."""
    if launcher is not None and launcher.kind == "mpi":
        from supervisor.clusters.mpi import serve_unless_driver

        serve_unless_driver(launcher, dashboard)


@contextlib.contextmanager
def open_cluster(
    *,
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    dashboard: str,
    launcher: Launcher | None = None,
    run_dir: Path = Path("runs/supervisor"),
    study: str = "supervisor",
    worker_log: Path | None = None,
) -> Iterator[ClusterHandle]:
    """The campaign's cluster, closed on exit. The Dask settings it relies on hold while
    it is open and are the caller's again after: a notebook's own clusters do not
    inherit them. ``worker_log``: where a local cluster's workers write their output."""
    with configure_dask():
        handle = _connect(
            workers, threads, scheduler, dashboard, launcher, run_dir, study, worker_log
        )
        try:
            yield handle
        finally:
            # A Ctrl-C waits for the close: cut short, it left the scheduler, workers and
            # trial processes running for the interpreter's life (a notebook's kernel).
            with interrupt_held():
                with contextlib.suppress(Exception):
                    handle.client.close()
                if handle.cluster is not None:
                    with contextlib.suppress(Exception):
                        handle.cluster.close()
                if handle.after_close is not None:
                    handle.after_close()


def _connect(
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    dashboard: str,
    launcher: Launcher | None,
    run_dir: Path,
    study: str,
    worker_log: Path | None = None,
) -> ClusterHandle:
    dashboard = on_loopback(dashboard)
    if scheduler:
        from supervisor.clusters.existing import connect_existing

        return connect_existing(scheduler, threads)
    if launcher is None or launcher.kind == "local":
        from supervisor.clusters.local import make_local
        from supervisor.clusters.main_guard import check_main_guard

        check_main_guard()  # its workers import the script that called this again

        extra = launcher.extra if launcher else {}
        return make_local(
            workers=workers or extra.get("workers"),
            threads=threads or extra.get("threads"),
            dashboard=on_loopback((launcher.dashboard if launcher else None) or dashboard),
            log=worker_log,
        )
    if launcher.kind == "mpi":
        from supervisor.clusters.mpi import connect_mpi

        return connect_mpi(launcher, dashboard)
    from supervisor.clusters.jobqueue import make_jobqueue

    return make_jobqueue(launcher, run_dir, study, dashboard)
