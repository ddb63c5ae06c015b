"""Per-channel standardisation of channels-last patches, for every weather task: the
statistics of the training split, applied to every split."""

from __future__ import annotations

import numpy as np


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float32 [C]) of ``x`` [n, ..., C].

    Accumulated in float64 over blocks of samples, around a per-channel shift (PSL is
    ~1e5 Pa and varies by ~1e2), without a float64 copy of the whole array; sums run
    along whole samples, which numpy vectorises far better than 8-wide channel rows.
    """
    n, c = x.shape[0], x.shape[-1]
    if n == 0:
        raise ValueError("no samples to compute channel statistics from")
    flat = x.reshape(n, -1)
    shift = np.tile(flat[0].reshape(-1, c).mean(axis=0), flat.shape[1] // c)
    total = np.zeros(flat.shape[1])
    squares = np.zeros(flat.shape[1])
    block = max(1, (1 << 21) // flat.shape[1])  # ~8 MB of float32 per block
    for start in range(0, n, block):
        dev = flat[start : start + block] - shift
        total += dev.sum(axis=0, dtype=np.float64)
        squares += np.square(dev).sum(axis=0, dtype=np.float64)
    count = flat.size // c
    mean = total.reshape(-1, c).sum(axis=0) / count
    var = np.maximum(squares.reshape(-1, c).sum(axis=0) / count - mean**2, 0.0)
    mean += shift[:c]
    return mean.astype(np.float32), np.maximum(np.sqrt(var), 1e-12).astype(np.float32)


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardise channels-last ``x`` in place when it is a writable float32 array
    (data sets are large; a copy would double memory), else in a float32 copy."""
    out = np.asarray(x, dtype=np.float32)
    if out is x and not (out.flags.writeable and out.flags.c_contiguous):
        out = out.copy(order="C")
    out = np.ascontiguousarray(out)  # a no-op unless a conversion left another order
    if out.size == 0:
        return out
    # Tiled over whole samples: long inner loops instead of 8-wide channel rows.
    flat = out.reshape(out.shape[0], -1)
    reps = flat.shape[1] // out.shape[-1]
    flat -= np.tile(np.asarray(mean, np.float32), reps)
    flat *= np.tile(1.0 / np.asarray(std, np.float32), reps)
    return out
