"""Smooth random fields with a red spectrum, for the backgrounds of synthetic patches."""

from __future__ import annotations

import numpy as np


class RedNoise:
    """Random fields [m, H, W] of unit variance (averaged over the patch), isotropic
    spectrum ``(1 + (scale * k)^2)^(-slope / 2)`` (k in cycles per pixel), no
    wavelength shorter than ``shortest`` pixels.

    Synthesised as B_rows @ C @ B_cols^T from a separable Fourier basis whose period is
    1.5 times the patch side (so the fields do not visibly wrap around); C holds the
    random coefficients. Two small matmuls per field: far cheaper than FFT filtering.
    """

    def __init__(self, shape: tuple[int, int], shortest: float, scale: float, slope: float):
        self.shape = shape
        bases, freqs = [], []
        for size in shape:
            period = 1.5 * size
            k = np.arange(1, int(period // shortest) + 1)
            i = np.arange(size)[:, None]
            phase = 2 * np.pi * i * k[None, :] / period
            cols = [np.ones((size, 1)), np.cos(phase), np.sin(phase)]
            bases.append(np.concatenate(cols, axis=1))
            freqs.append(np.concatenate([[0.0], k / period, k / period]))
        self.rows = bases[0].astype(np.float32)  # [H, Mr]
        self.cols_t = np.ascontiguousarray(bases[1].T, dtype=np.float32)  # [Mc, W]
        kk = np.hypot(*np.meshgrid(freqs[0], freqs[1], indexing="ij"))
        amp = (1 + (scale * kk) ** 2) ** (-slope / 2)
        amp[0, 0] = 0.0  # zero mean: the mean state is set by the caller
        # Patch-averaged variance of the field is sum(amp^2 * <B_r^2> <B_c^2>).
        var = np.einsum("pq,p,q->", amp**2, np.mean(bases[0] ** 2, 0), np.mean(bases[1] ** 2, 0))
        self.amp = (amp / np.sqrt(var)).astype(np.float32)

    def sample(
        self, rng: np.random.Generator, m: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``m`` independent fields, float32 [m, H, W] (written into ``out`` if given)."""
        coef = rng.standard_normal((m, *self.amp.shape), dtype=np.float32)
        coef *= self.amp
        height, width = self.shape
        if out is None:
            out = np.empty((m, height, width), np.float32)
        # Rows first, then one large GEMM over all samples: numpy's matmul of a matrix
        # with a stack of larger ones is orders of magnitude slower.
        half = np.matmul(self.rows, coef)  # [m, H, Mc]
        np.matmul(half.reshape(m * height, -1), self.cols_t, out=out.reshape(m * height, width))
        return out
