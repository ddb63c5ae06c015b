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
    while watch:
        time.sleep(watch)
        print()
        print_status(opened.study, run_dir=opened.run_dir)
