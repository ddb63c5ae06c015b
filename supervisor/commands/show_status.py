"""``supervisor status RUN [--watch S]``: open the run, print its status table (and its
driver's batch jobs when ``supervisor submit`` runs it), again every ``watch`` seconds."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.api import open_run
from supervisor.commands.status import print_status
from supervisor.commands.submit import read_chain
from supervisor.errors import UserError
from supervisor.rundir import hide_secrets_in
from supervisor.study.records import RecordCache

if TYPE_CHECKING:
    import optuna


def show_status(run: str, runs_dir: Path, watch: float | None) -> None:
    """``supervisor status RUN [--watch S]``: the table, then again every ``watch`` s
    until Ctrl-C (``main()`` exits 130)."""
    if watch is not None:
        from supervisor.commands.preflight import seconds

        seconds(watch, "--watch", 1, 86400)
    opened = open_run(run, runs_dir=runs_dir)
    # One study for every look: its storage reads only what is new since the last one
    # (a fresh open replayed the whole journal each time: 1.1 s against 0.16 s for
    # 2,500 trials, on the login node, every few seconds, for days).
    first = opened.study
    cache = RecordCache()  # and the records of its trials that have not changed since
    shown = print_status(first, run_dir=opened.run_dir, cache=cache)
    study: optuna.Study | None = first
    _chain(opened.run_dir, shown.left)
    unreadable: tuple[type[Exception], ...] = (UserError, OSError, *_database_errors())
    away = False  # the storage could not be read at the last look
    while watch:
        if not away:
            print()  # between tables
        time.sleep(watch)
        # A storage away for a while (a file system, a database restarting) is a pause
        # of the watch, said once, not its end: it is opened again at the next look.
        try:
            if study is None:
                study = opened.study
            shown = print_status(study, run_dir=opened.run_dir, cache=cache)
            _chain(opened.run_dir, shown.left)  # a link submitted since the last look too
        except unreadable as exc:
            study = None
            if not away:
                # Masked before it is cut: a password's head cut off at 300 is no less
                # a secret (a driver's message may quote it, as ``open_storage`` knows).
                why = hide_secrets_in(" ".join(str(exc).split()), opened.storage_url)[:300]
                print(
                    f"{time.strftime('%H:%M:%S')} cannot read the run's storage: {why};"
                    f" looking again every {watch:g} s",
                    file=sys.stderr,
                    flush=True,
                )
            away = True
            continue
        away = False


def _chain(run_dir: Path, left: int | None) -> None:
    """The driver jobs of a ``supervisor submit`` chain, and where the chain is
    (``left``: the trials the campaign has left to run)."""
    jobs = read_chain(run_dir)
    if jobs:  # `supervisor submit`: the driver runs as a chain of batch jobs
        ids = ", ".join(str(j.get("job_id")) for j in jobs)
        print(f"Driver jobs: {len(jobs)} ({ids}); logs in {run_dir / 'driver'}")
        print(chain_state(run_dir, str(jobs[-1].get("job_id")), left))


def chain_state(run_dir: Path, last: str, left: int | None) -> str:
    """Where the chain is: its last job waiting, running, or ended. Each link submits
    the next before it ends, so a last job that ended with trials left stopped the chain
    (the user saw the list of jobs and could not tell a chain between links from one
    that had stopped days ago)."""
    from supervisor.commands.driver_jobs import state

    now = state(last)
    if now is None:
        return f"The last driver job, {last}: its state unknown (squeue does not answer)"
    if now:
        return f"The last driver job, {last}, is {now.lower()}"
    if left == 0:
        return f"The last driver job, {last}, has ended: the campaign has nothing left to run"
    return (
        f"The chain has stopped: its last driver job, {last}, has ended with trials left"
        f" (its log says why: {run_dir / 'driver' / f'{last}.log'}); `supervisor submit`"
        " with the same arguments continues it"
    )


def _database_errors() -> tuple[type[Exception], ...]:
    """What a database storage raises when its server is away. Only a database storage
    has imported SQLAlchemy: importing it for a journal's status cost 0.1 to 0.8 s of a
    `supervisor status` (more than reading a 1,000-trial campaign)."""
    if "sqlalchemy" not in sys.modules:
        return ()
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError,)
