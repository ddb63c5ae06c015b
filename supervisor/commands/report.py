"""The reports of a campaign, written together: the campaign report and, for several
objectives, the Pareto report it links to. Used by ``search`` when it ends and by
``supervisor report`` (and ``Run.report()``) at any time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
from supervisor.commands.preflight import output_file
from supervisor.errors import UserError

if TYPE_CHECKING:
    import optuna


REPORT_SUFFIXES = (".html", ".htm")


def report_output(out: Path, flag: str, run_dir: Path, keep: Iterable[Path]) -> None:
    """A file the campaign report may go to (``preflight.output_file``) whose name says
    HTML: ``-o report.pdf`` wrote HTML into a .pdf that no PDF reader opens."""
    output_file(out, flag, run_dir, keep)
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise UserError(f"{flag} {out}: the report is HTML; give a file name ending in .html")


def write_reports(
    study: optuna.Study, out: Path, run_info: Mapping[str, Any], run_dir: Path
) -> list[Path]:
    """Write the campaign report to ``out`` (and its Pareto report beside it, first, so
    that the campaign report links to it); the paths written, the campaign report last."""
    from supervisor.report.search import write_search_report

    atomic.folder(out.parent)
    written = []
    if len(study.directions) > 1:
        from supervisor.report.pareto import pareto_path, write_pareto_report

        pareto = pareto_path(out, study.study_name)
        written.append(write_pareto_report(study, pareto, run_info, campaign_report=out))
    written.append(write_search_report(study, out, run_info, run_dir=run_dir))
    return written
