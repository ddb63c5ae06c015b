"""Values far outside the others: a trial whose training diverged (a loss of 1e37) sets
a figure's autorange on its own and squeezes every other curve or point into a flat line.

``fence`` finds the bounds beyond which a value counts as such an outlier: many times
the spread of the bulk of the values beyond the bulk. It is lenient on purpose: a wide
spread of ordinary values (losses over four decades) is never cut, only values orders of
magnitude away from the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# How far beyond the bulk, in spreads of the bulk, a value still counts as ordinary.
FAR = 20.0
SHARE = 0.1  # at most this share of the values at each end may be outliers (at least one)


def fence(values: Iterable[float]) -> tuple[float, float] | None:
    """(low, high): the values in it are ordinary; None when none of the values is far
    outside the others (or there are too few to tell). Non-finite values are ignored."""
    xs = sorted(v for v in values if math.isfinite(v))
    n = len(xs)
    if n < 3:
        return None
    cut = max(1, int(SHARE * n))
    low, high = xs[cut], xs[n - 1 - cut]  # the bulk, without the ends
    spread = high - low
    if spread <= 0:  # a bulk of one value: the nearer end says how far values lie
        spread = min(low - xs[0], xs[-1] - high)
    if spread <= 0:  # all but the ends alike: far is many times their magnitude
        spread = max(abs(low), abs(high)) or 1.0
    bounds = (low - FAR * spread, high + FAR * spread)
    if bounds[0] <= xs[0] and xs[-1] <= bounds[1]:
        return None
    return bounds


def axis_range(values: Iterable[float], bounds: tuple[float, float]) -> list[float]:
    """A y-axis range showing the values within ``bounds``, with a margin."""
    inside = [v for v in values if bounds[0] <= v <= bounds[1]]
    low, high = min(inside), max(inside)
    margin = (high - low) * 0.05 or max(abs(low) * 0.05, 1.0)
    return [low - margin, high + margin]


def short(value: float) -> str:
    return f"{value:.3g}"


def clip_drawn(fig: Any, y_range: list[float]) -> Any:
    """``fig`` with its y-axis on ``y_range``, and the y values of its traces drawn no
    farther than a few ranges beyond it: off the axis either way, but plotly.js placed a
    marker at 1e37 with an SVG transform the browser rejects (a console error per marker).
    Hover texts keep the true values."""
    import numpy as np

    low, high = y_range
    span = high - low
    for trace in fig.data:
        y = getattr(trace, "y", None)
        if y is None or len(y) == 0:
            continue
        kind = y.dtype if isinstance(y, np.ndarray) and y.dtype.kind == "f" else np.float64
        try:
            values = np.asarray(y, dtype=kind)  # single precision stays single (page size)
        except (TypeError, ValueError):  # categories
            continue
        trace.y = np.clip(values, low - 10 * span, high + 10 * span).astype(kind)
    return fig.update_yaxes(range=y_range)
