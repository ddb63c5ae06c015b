"""The train / validation / test splits of a synthetic data set and their random streams."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

SPLITS = ("train", "val", "test")

T = TypeVar("T")


def generate_splits(
    seed: int,
    sizes: Mapping[str, int],
    generate: Callable[[int, np.random.SeedSequence], T],
) -> dict[str, T]:
    """``generate(n, stream)`` for every split, ``n`` being ``sizes["n_<split>"]`` (the
    benchmark's options) and ``stream`` the split's own child of ``seed``: independent
    streams, so that changing ``n_train`` leaves the validation set unchanged."""
    streams = np.random.SeedSequence(seed).spawn(len(SPLITS))
    return {
        split: generate(sizes[f"n_{split}"], stream)
        for split, stream in zip(SPLITS, streams, strict=True)
    }
