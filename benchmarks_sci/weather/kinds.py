"""Labels and the kind of system each synthetic weather patch holds (TC, AR and WF alike).

Kind 0 is "none", 1 the event the task detects; higher kinds are distractors.
"""

from __future__ import annotations

import numpy as np

EVENT = 1  # the kind of the detected event (tropical cyclone, atmospheric river, front)


def balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 labels [n]: exactly ``n // 2`` ones, in random order."""
    return (rng.permutation(n) < n // 2).astype(np.int64)


def main_kinds(
    y: np.ndarray, p_distractor: float, distractors: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """int8 kind of each patch's main system: the event for positives; for negatives a
    random distractor with probability ``p_distractor``, else none."""
    main = y.astype(np.int8) * EVENT
    decoy = (y == 0) & (rng.random(y.size) < p_distractor)
    main[decoy] = rng.choice(distractors, size=int(decoy.sum()))
    return main
