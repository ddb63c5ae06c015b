"""HTML reports of campaigns: one self-contained page per study, readable offline.

Importing this package is cheap (no plotly, no Optuna): the CLI imports it at start-up.
"""
