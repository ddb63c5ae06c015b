"""The ``difficulty`` of a synthetic generator: knob values interpolated between levels.

Every generator tabulates its knobs at a few difficulties (``levels["difficulty"]``,
e.g. 0, 0.5 and 1) and is piecewise linear in between, so that the default difficulty
reproduces the tuned values exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def check_difficulty(difficulty: float) -> None:
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")


def knobs_at(levels: Mapping[str, Sequence[float]], difficulty: float) -> dict[str, float]:
    """Every knob of ``levels`` (but ``difficulty`` itself) at ``difficulty`` in [0, 1]."""
    check_difficulty(difficulty)
    at = levels["difficulty"]
    return {k: float(np.interp(difficulty, at, v)) for k, v in levels.items() if k != "difficulty"}
