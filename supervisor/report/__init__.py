"""HTML reports of campaigns: one self-contained page per study, readable offline.

Importing this package is cheap (no plotly, no Optuna): the CLI imports it at start-up.
"""

from supervisor.report.search import render_search_report, write_search_report

__all__ = ["render_search_report", "write_search_report"]
