"""Physics statistics of sets of maps (numpy only): how CosmoGAN is judged.

Quality is judged by physics, not by the GAN loss (Mustafa et al. 2017): generated maps
must reproduce the held-out maps'

* azimuthally averaged 2-D power spectrum, P(k) = <|FFT(x)(k)|^2> / N^2 over the modes
  with |k| in a bin (k in cycles per map), averaged over the maps of a set. With this
  normalisation white noise of variance s^2 has P(k) = s^2 at every k, and the sum of
  P over all modes / N^2 is the variance (Parseval). Bins are log-spaced from the
  fundamental k = 1 to the Nyquist frequency k = N / 2 (the corners beyond it are only
  partly covered); bins without a mode are dropped. ``spectrum_error`` is the mean over
  bins of |P_gen / P_ref - 1|;
* pixel-intensity distribution: ``ks_distance`` is the two-sample Kolmogorov-Smirnov
  statistic of all pixel values (the same statistic as ``scipy.stats.ks_2samp``, written
  here to keep this module numpy-only and to reuse one set's sorted pixels).

``compare`` returns both and their sum, the ``score`` (0 for a perfect generator).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

DEFAULT_BINS = 16


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class MapStats:
    """What ``compare`` needs of a set of maps: its mean spectrum and sorted pixels."""

    k: np.ndarray  # mean |k| of the modes in each non-empty bin, cycles per map
    spectrum: np.ndarray  # mean power in each bin, float64
    pixels: np.ndarray  # every pixel value, sorted, float32
    n_maps: int

    @classmethod
    def of(cls, maps: np.ndarray, n_bins: int = DEFAULT_BINS) -> MapStats:
        maps = _as_maps(maps)
        k, spectrum = power_spectrum(maps, n_bins)
        return cls(k=k, spectrum=spectrum, pixels=np.sort(maps, axis=None), n_maps=len(maps))


def compare(generated: MapStats, reference: MapStats) -> dict[str, float]:
    """``ps_error``, ``hist_ks`` and ``score`` = their sum, of generated against reference
    maps (same map size); all NaN when the generated maps hold a non-finite value."""
    if generated.k.shape != reference.k.shape or not np.allclose(generated.k, reference.k):
        raise ValueError("generated and reference maps have different sizes or spectrum bins")
    if not (np.isfinite(generated.spectrum).all() and np.isfinite(generated.pixels).all()):
        return dict.fromkeys(("ps_error", "hist_ks", "score"), np.nan)
    ps = spectrum_error(generated.spectrum, reference.spectrum)
    ks = _ks_sorted(generated.pixels, reference.pixels)
    return {"ps_error": ps, "hist_ks": ks, "score": ps + ks}


def power_spectrum(maps: np.ndarray, n_bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres k (mean |k| of their modes) and the set's mean power in each bin."""
    maps = _as_maps(maps)
    size = maps.shape[-1]
    bin_of, weight, k_mean, counts = _bins(size, n_bins)
    power = np.zeros(bin_of.shape)
    block = max(1, (1 << 20) // size**2)  # FFT a few MB at a time
    for start in range(0, len(maps), block):
        f = np.fft.rfft2(maps[start : start + block].astype(np.float64))
        power += np.sum(f.real**2 + f.imag**2, axis=0)
    power *= weight / (len(maps) * size**2)
    total = np.bincount(bin_of.ravel(), power.ravel(), minlength=n_bins + 1)
    keep = counts > 0
    return k_mean[keep], total[:-1][keep] / counts[keep]


def spectrum_error(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean over bins of |P_gen / P_ref - 1| (0 when equal; 1 when no power at all)."""
    generated, reference = np.asarray(generated), np.asarray(reference)
    if generated.shape != reference.shape or generated.size == 0:
        raise ValueError(f"spectra of shapes {generated.shape} and {reference.shape}")
    if not (reference > 0).all():
        raise ValueError("the reference spectrum must be positive in every bin")
    return float(np.mean(np.abs(generated / reference - 1.0)))


def ks_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov statistic of the values of ``a`` and ``b`` (any
    shapes): the largest gap between their empirical distribution functions."""
    return _ks_sorted(np.sort(a, axis=None), np.sort(b, axis=None))


def _ks_sorted(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0 or b.size == 0:
        raise ValueError("KS distance of an empty sample")
    if np.isnan(a[-1]) or np.isnan(b[-1]):  # sorting puts NaN last
        return np.nan
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / a.size
    cdf_b = np.searchsorted(b, both, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _as_maps(maps: np.ndarray) -> np.ndarray:
    """[n, N, N] view of maps given as [n, N, N] or [n, N, N, 1]."""
    maps = np.asarray(maps)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or maps.shape[1] < 4 or not len(maps):
        raise ValueError(f"expected square maps [n, N, N] or [n, N, N, 1], got {maps.shape}")
    return maps


def rfft2_modes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """|k| (cycles per map) of each mode of ``np.fft.rfft2`` on a size x size grid, and
    its multiplicity in the full plane: 2 for the columns standing for a conjugate pair,
    1 for kx = 0 and the Nyquist column, which have no twin in the half plane."""
    ky = np.fft.fftfreq(size, 1.0 / size)
    kx = np.fft.rfftfreq(size, 1.0 / size)
    weight = np.full((size, kx.size), 2.0)
    weight[:, 0] = weight[:, -1] = 1.0
    return np.hypot(ky[:, None], kx[None, :]), weight


@cache
def _bins(size: int, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per rfft2 mode: its bin (n_bins = outside [1, N/2]) and multiplicity in the full
    plane; per bin: the mean |k| and the number of modes (full plane)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    k, weight = rfft2_modes(size)
    edges = np.geomspace(1.0, size / 2, n_bins + 1)
    edges[-1] *= 1 + 1e-9  # the Nyquist frequency belongs to the last bin
    bin_of = np.searchsorted(edges, k, side="right") - 1
    bin_of[(k < 1) | (bin_of >= n_bins)] = n_bins
    counts = np.bincount(bin_of.ravel(), weight.ravel(), minlength=n_bins + 1)[:-1]
    k_sum = np.bincount(bin_of.ravel(), (weight * k).ravel(), minlength=n_bins + 1)[:-1]
    k_mean = np.divide(k_sum, counts, out=np.zeros(n_bins), where=counts > 0)
    return bin_of, weight, k_mean, counts
