"""Synthetic weak-lensing convergence maps: log-normal transforms of Gaussian random fields.

The log-normal field is the standard cheap model of convergence maps (it reproduces
their positive skewness and the one-sided bound kappa >= -lambda): a map is

    g      Gaussian random field on a periodic size x size grid with power spectrum
           P_g(k) = A k^-n (k in cycles per map, P_g(0) = 0), A set so that Var(g) =
           amplitude^2;
    x      = exp(g - amplitude^2 / 2) = 1 + kappa / lambda, the shifted convergence in
           units of its shift lambda: non-negative, mean 1, log-normally distributed.

Each map has its own cosmology, ``(amplitude, slope)`` = (std of g, n), drawn uniformly
in ranges set by ``difficulty`` and returned as the map's target, so that conditional
generation and parameter regression are possible. Larger amplitudes mean stronger
non-Gaussianity (heavier tails, more skewness); wider ranges make the map set a broader
mixture for the generator to match (see ``Knobs``).

Generation is vectorised over chunks of maps (one FFT pair per chunk, a few MB, which
stays in cache); each chunk draws from its own child stream of the seed and writes its
own slice, so chunks run on threads and the result does not depend on their number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks_sci.cosmogan.physics import rfft2_modes
from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, run_chunks, seed_sequence

PARAM_NAMES: tuple[str, ...] = ("amplitude", "slope")
DEFAULT_DIFFICULTY = 0.5
_CHUNK_PIXELS = 1 << 20  # pixels per chunk: FFTs of a few MB stay in cache


@dataclass(frozen=True)
class Knobs:
    """Ranges of the per-map parameters at a difficulty (piecewise linear in it)."""

    amplitude_low: float
    amplitude_high: float
    slope_low: float
    slope_high: float

    @classmethod
    def at(cls, difficulty: float) -> Knobs:
        return cls(**knobs_at(_LEVELS, difficulty))


# 0: one cosmology, mildly non-Gaussian; 0.5 (default): a moderate family; 1: a wide
# family reaching strongly non-Gaussian maps and both steep and shallow spectra.
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "amplitude_low": (0.5, 0.5, 0.5),
    "amplitude_high": (0.5, 0.9, 1.4),
    "slope_low": (2.5, 2.2, 1.8),
    "slope_high": (2.5, 2.8, 3.2),
}


def make_maps(
    n: int,
    size: int,
    seed: SeedLike,
    difficulty: float = DEFAULT_DIFFICULTY,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` maps x = 1 + kappa / lambda (float32 [n, size, size], >= 0, mean 1) and their
    parameters (float32 [n, 2]: amplitude, slope). Deterministic for a given seed,
    whatever ``threads`` (default: the cores this process may use, see ``parallel``)."""
    knobs = Knobs.at(difficulty)
    root = seed_sequence(seed)
    rng = np.random.default_rng(child(root, 0))
    amplitude = rng.uniform(knobs.amplitude_low, knobs.amplitude_high, n)
    slope = rng.uniform(knobs.slope_low, knobs.slope_high, n)
    maps = _fields(amplitude, slope, size, child(root, 1), threads, log_normal=True)
    return maps, np.stack([amplitude, slope], axis=1).astype(np.float32)


def gaussian_fields(
    amplitude: np.ndarray,
    slope: np.ndarray,
    size: int,
    seed: SeedLike,
    threads: int | None = None,
) -> np.ndarray:
    """Zero-mean periodic Gaussian random fields (float32 [n, size, size]) with spectra
    P(k) = A_i k^-slope_i, A_i such that each field's variance is amplitude_i^2."""
    return _fields(amplitude, slope, size, seed_sequence(seed), threads, log_normal=False)


def _fields(
    amplitude: np.ndarray,
    slope: np.ndarray,
    size: int,
    root: np.random.SeedSequence,
    threads: int | None,
    log_normal: bool,
) -> np.ndarray:
    """Gaussian fields g, or exp(g - amplitude^2 / 2) if ``log_normal``."""
    amplitude = np.asarray(amplitude, np.float64)
    slope = np.asarray(slope, np.float64)
    n = amplitude.size
    if n < 1 or slope.shape != amplitude.shape:
        raise ValueError("amplitude and slope must be non-empty arrays of the same shape")
    if size < 4 or size % 2:
        raise ValueError(f"size must be an even number >= 4, got {size}")
    k, weight = rfft2_modes(size)
    k[0, 0] = np.inf  # P(0) = exp(-slope * log inf) = 0: every field has zero mean
    log_k = np.log(k)
    out = np.empty((n, size, size), np.float32)
    chunk = max(1, _CHUNK_PIXELS // size**2)

    def fill(i: int, sl: slice) -> None:
        """Fields [i * chunk, (i + 1) * chunk): own random stream, own slice of ``out``."""
        rng = np.random.default_rng(child(root, i))
        white = rng.standard_normal((sl.stop - sl.start, size, size), dtype=np.float32)
        power = np.exp(-slope[sl, None, None] * log_k)  # P_i(k) / A_i on the half plane
        # Var of irfft2(rfft2(white) * sqrt(P)) = sum of P over the full plane / size^2.
        variance = np.einsum("nij,ij->n", power, weight) / size**2
        power *= (amplitude[sl] ** 2 / variance)[:, None, None]
        spectrum = np.fft.rfft2(white)
        spectrum *= np.sqrt(power)
        g = out[sl]
        g[...] = np.fft.irfft2(spectrum, s=(size, size))
        if log_normal:
            g -= (amplitude[sl] ** 2 / 2).astype(np.float32)[:, None, None]
            np.exp(g, out=g)

    run_chunks(n, chunk, fill, threads)
    return out
