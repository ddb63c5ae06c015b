"""``supervisor report``'s flags: where the reports of a run go.

``search`` and ``ensemble`` write ``<study>.html`` into ``--reports-dir``; ``report``
rewrites the same file there, or writes the one file ``--output`` names (not both).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from supervisor.errors import UserError


def write_run_reports(
    run: str, output: Path | None, runs_dir: Path, reports_dir: Path | None
) -> list[Path]:
    """The reports of ``run`` written, the campaign report last."""
    from supervisor.api import open_run
    from supervisor.commands.preflight import writable_dir

    if output is not None and reports_dir is not None:
        raise UserError(
            "--output and --reports-dir: give one (--output names the report file,"
            " --reports-dir the folder of <study>.html)"
        )
    opened = open_run(run, runs_dir=runs_dir)
    if reports_dir is None:
        return opened.report(output)
    writable_dir(reports_dir, "--reports-dir")  # before the storage is read
    return replace(opened, reports_dir=reports_dir).report()
