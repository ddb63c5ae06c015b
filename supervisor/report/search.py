"""The campaign report: one self-contained HTML page per campaign, drawn from its study.

Sections, in reading order: summary (what ran, where, how long, the best configuration
and how to run it again), best trials, Pareto front, optimization history, parallel
coordinates, parameter importances, slice and contour plots, learning curves, the worker
timeline, the cost in allocation units, where trials ran, failures, and the benchmark
panels of the best trial's artifacts.
Each section lives in its own module; this one reads the study once and assembles them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import supervisor.atomic as atomic

if TYPE_CHECKING:
    import optuna

    from supervisor.report.campaign import Campaign
    from supervisor.report.page import Html, Page

__all__ = ["related_reports", "render_search_report", "write_search_report"]

logger = logging.getLogger(__name__)

# Reports of the same study that other commands write next to this one.
RELATED = (("pareto", "Pareto report"), ("uq", "Uncertainty (ensemble) report"))


def write_search_report(
    study: optuna.Study,
    path: Path,
    run_info: Mapping[str, Any] | None = None,
    *,
    run_dir: Path | None = None,
) -> Path:
    """Write the HTML report of ``study`` to ``path`` (atomically) and return ``path``.

    ``run_dir``: the campaign's run directory, where the trials' artifacts are; without it
    the report has no benchmark panels.
    """
    path = Path(path)
    links = related_reports(path, study.study_name)
    text = render_search_report(study, run_info, run_dir=run_dir, links=links)
    # Private (0600): a report shows the command line and every failed trial's error.
    atomic.write(path, text, mode=0o600, durable=True)  # a browser never sees half of it
    return path


def related_reports(path: Path, study_name: str) -> list[tuple[str, str]]:
    """(title, relative link) of the ``<study>-pareto.html`` etc. next to ``path``."""
    found = []
    for suffix, title in RELATED:
        name = f"{study_name}-{suffix}.html"
        if (path.parent / name).is_file():
            found.append((title, quote(name)))
    return found


def render_search_report(
    study: optuna.Study,
    run_info: Mapping[str, Any] | None = None,
    *,
    run_dir: Path | None = None,
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """The report of ``study`` as one HTML document."""
    from optuna.exceptions import ExperimentalWarning

    from supervisor.report import (
        artifacts,
        cost_section,
        curves,
        failures,
        optuna_plots,
        provenance,
        summary,
        timeline,
    )
    from supervisor.report.campaign import Campaign
    from supervisor.report.page import Page

    with warnings.catch_warnings(), _quiet_nonfinite():
        # set_metric_names and some plots are "experimental"; the user can do nothing about it.
        warnings.simplefilter("ignore", ExperimentalWarning)
        t0 = time.perf_counter()
        camp = Campaign.load(study, run_dir)
        logger.debug(
            "report: read %d trials in %.2f s", len(camp.trials), time.perf_counter() - t0
        )
        n = len(camp.trials)
        page = Page(
            f"Search report: {camp.study_name}",
            f"{n} trial{'s' if n != 1 else ''} · {camp.objectives_text}",
        )
        sections: list[tuple[str, str, Callable[[Campaign, Page], list[Html]]]] = [
            ("summary", "Summary", lambda c, p: summary.summary(c, run_info or {}, links)),
            ("best", "Best trials", lambda c, p: summary.best_trials(c)),
        ]
        if camp.multi:
            sections.append(("pareto", "Pareto front", optuna_plots.pareto))
        sections += [
            ("history", "Optimization history", optuna_plots.history),
            ("parallel", "Parallel coordinates", optuna_plots.parallel),
            # Before slice and contour: they show the parameters this finds most important.
            ("importance", "Parameter importances", optuna_plots.importances),
            ("slice", "Slice plots", optuna_plots.slices),
            ("contour", "Contour plots", optuna_plots.contours),
            ("curves", "Learning curves", curves.curves),
            ("timeline", "Worker timeline", timeline.timeline),
            ("resources", "Cost in allocation units", cost_section.section),
            ("provenance", "Where trials ran", provenance.section),
        ]
        if camp.failed:
            sections.append(("failures", "Failures", lambda c, p: failures.failures(c)))
        for anchor, title, make in sections:
            _timed(page, anchor, title, functools.partial(make, camp, page))
        t0 = time.perf_counter()
        for anchor, title, body in artifacts.panels(camp, page):
            page.section(anchor, title, body)
        logger.debug("report: benchmark panels in %.2f s", time.perf_counter() - t0)
        return page.render()


def _timed(page: Page, anchor: str, title: str, make: Callable[[], list[Html]]) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    page.section(anchor, title, make())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    logger.debug("report: section %s in %.2f s (%.2f s CPU)", anchor, wall, cpu)


@contextlib.contextmanager
def _quiet_nonfinite() -> Iterator[None]:
    """Optuna logs a line per trial with an inf value, in every figure: thousands, where
    training diverges often. The summary counts them once instead."""
    from supervisor.optuna_internals import VISUALIZATION_LOGGER

    optuna_logger = logging.getLogger(VISUALIZATION_LOGGER)

    def keep(record: logging.LogRecord) -> bool:
        return "omitted in visualization" not in record.getMessage()

    optuna_logger.addFilter(keep)
    try:
        yield
    finally:
        optuna_logger.removeFilter(keep)
