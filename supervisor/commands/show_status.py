"""``supervisor status RUN [--watch S]``: open the run, print its status table (and its
driver's batch jobs when ``supervisor submit`` runs it), again every ``watch`` seconds."""

from __future__ import annotations

import time
from pathlib import Path

from supervisor.api import open_run
from supervisor.commands.status import print_status
from supervisor.commands.submit import read_chain


def show_status(run: str, runs_dir: Path, watch: float | None) -> None:
    """``supervisor status RUN [--watch S]``: the table, then again every ``watch`` s
    until Ctrl-C (``main()`` exits 130)."""
    if watch is not None:
        from supervisor.commands.preflight import seconds

        seconds(watch, "--watch", 1, 86400)
    opened = open_run(run, runs_dir=runs_dir)
    print_status(opened.study, run_dir=opened.run_dir)
    jobs = read_chain(opened.run_dir)
    if jobs:  # `supervisor submit`: the driver runs as a chain of batch jobs
        ids = ", ".join(str(j.get("job_id")) for j in jobs)
        print(f"Driver jobs: {len(jobs)} ({ids}); logs in {opened.run_dir / 'driver'}")
        print(chain_state(opened.run_dir, str(jobs[-1].get("job_id")), opened.status().left))
    while watch:
        time.sleep(watch)
        print()
        print_status(opened.study, run_dir=opened.run_dir)


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
