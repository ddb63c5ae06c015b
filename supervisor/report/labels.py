"""User strings in a figure shown as written.

plotly.js reads every label (titles, tick labels, legend names, hover texts, and the
category values that become tick labels) as a small HTML subset: a categorical choice
``<b>x</b>`` showed as a bold "x", ``<script>`` vanished. No script runs (plotly allows
only formatting tags), but the label was wrong. ``literal`` escapes ``&``, ``<`` and
``>`` in these strings (plotly turns the entities back into the characters); the line
breaks and hover boxes that Optuna's and our hover texts use stay tags.
"""

from __future__ import annotations

import html
import re
from typing import Any

# Keys whose strings plotly.js shows as labels, or matches against them (categories).
_LABEL_KEYS = frozenset(
    {
        "text",
        "name",
        "title",
        "hovertext",
        "hovertemplate",
        "ticktext",
        "tickvals",
        "categoryarray",
        "label",
        "labels",
        "x",
        "y",
        "z",
        "customdata",
    }
)
# The tags the figures use on purpose: line breaks, and the side box of a hover label.
_KEPT = re.compile(r"&lt;(br|/?extra)&gt;")
_SKIPPED = frozenset({"template"})  # plotly's theme: no user strings, and large


def literal(value: str) -> str:
    """``value`` for a plotly label: shown as written (but ``<br>`` still breaks a line)."""
    if not any(c in value for c in "<>&"):
        return value
    return _KEPT.sub(r"<\1>", html.escape(value, quote=False))


def literal_labels(spec: Any, labels: bool = False) -> Any:
    """A copy of a figure's dict (``fig.to_dict()``) with its label strings ``literal``."""
    if isinstance(spec, dict):
        return {
            k: v if k in _SKIPPED else literal_labels(v, labels or k in _LABEL_KEYS)
            for k, v in spec.items()
        }
    if isinstance(spec, (list, tuple)):
        return [literal_labels(v, labels) for v in spec]
    if labels and getattr(getattr(spec, "dtype", None), "kind", "") in ("U", "O"):
        return [literal_labels(v, labels) for v in spec.tolist()]  # numpy strings
    if labels and isinstance(spec, str):
        return literal(spec)
    return spec
