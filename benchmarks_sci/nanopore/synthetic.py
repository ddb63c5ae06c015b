"""Synthetic nanopore squiggles: a k-mer pore model driven by random DNA, as simulators do.

A strand moves through the pore one base at a time. While it stalls, the current stays
near the level of the k bases (a 5-mer) inside the pore, so the raw signal is a noisy
staircase: one step (an *event*) per base, of a random number of samples. Reads are
built the way public squiggle simulators (e.g. DeepSimulator, squigulator) build them:

* pore model (``pore_model``): a fixed table of mean current (pA) per 5-mer, drawn once
  from its own seed (``PORE_SEED``), so that every split and every data seed share the
  same pore. Like real R9 tables, the central bases matter most (a position-weighted sum
  of per-base effects plus a smaller 5-mer interaction), levels spread over ~50-120 pA
  (mean 90, sd 12), and each 5-mer has its own noise factor.
* reads: uniform random sequences; each base dwells 1 + floor(Gamma) samples (mean
  ``MEAN_DWELL`` = 9, about R9.4.1's 4 kHz at 450 bases/s); ``difficulty`` lowers the
  gamma shape, so dwell times vary more and more bases last a sample or two.
* signal: each event's level (the 5-mer's, jittered), scaled and shifted per read (pores
  and channels differ), plus per-sample Gaussian noise and a slow drift (two sinusoids
  of periods 1,500-6,000 samples); then normalised per read with the median and the MAD
  (x 1.4826), as Bonito and Chiron normalise real reads.
* segments: every read is cut into ``SEGMENTS_PER_READ`` consecutive segments of
  ``segment_length`` samples. A segment's labels are the central bases of the events
  whose midpoint lies inside it, in order: A, C, G, T = 0, 1, 2, 3, padded with -1.

Generation is vectorised over chunks of a fixed number of reads (one ``np.repeat`` maps
every sample to its event), each with its own random stream, which bounds the temporaries.
20,000 segments take 1-3 s on the 2 shared cores here: well under 1 % of a trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, seed_sequence

BASES = "ACGT"
BLANK = len(BASES)  # index of the CTC blank among the model's 5 outputs (TF's, Chiron's)
K = 5  # bases in the pore at once
PORE_SEED = 20170912  # the pore model's own seed: one pore for every split and data seed
MEAN_DWELL = 9.0  # samples per base
SEGMENT_LENGTH = 400
SEGMENTS_PER_READ = 10
DEFAULT_DIFFICULTY = 0.5
MAD_TO_SD = 1.4826  # MAD x this = standard deviation, for Gaussian data
_CHUNK_READS = 64  # reads generated together (64 x 4000 samples: a few MB of temporaries)
_POSITION_WEIGHTS = (0.35, 0.75, 1.0, 0.75, 0.35)  # influence of each base on the level


@dataclass(frozen=True, eq=False)
class PoreModel:
    """Mean current (pA) and noise factor of every k-mer, indexed by its base-4 code
    (first base most significant: AAAAA = 0, AAAAC = 1, ..., TTTTT = 4**K - 1)."""

    level: np.ndarray  # float32 [4**K]
    noise: np.ndarray  # float32 [4**K], multiplies the per-sample noise

    def center_base(self) -> np.ndarray:
        """The central base (0..3) of every k-mer code: the base a k-mer's event labels."""
        return (np.arange(4**K) // 4 ** (K - 1 - K // 2)) % 4


def pore_model(seed: int = PORE_SEED) -> PoreModel:
    """The k-mer table: position-weighted base effects plus an interaction term."""
    rng = np.random.default_rng(seed)
    digits = (np.arange(4**K)[:, None] // 4 ** np.arange(K - 1, -1, -1)) % 4  # [4**K, K]
    effect = rng.standard_normal((K, 4))
    additive = sum(w * effect[p, digits[:, p]] for p, w in enumerate(_POSITION_WEIGHTS))
    raw = additive + 0.3 * rng.standard_normal(4**K)
    level = 90.0 + 12.0 * (raw - raw.mean()) / raw.std()
    noise = rng.uniform(0.8, 1.25, 4**K)
    return PoreModel(level=level.astype(np.float32), noise=noise.astype(np.float32))


PORE = pore_model()


@dataclass(frozen=True)
class Knobs:
    """What makes reads hard; ``Knobs.at(difficulty)`` interpolates ``_LEVELS``."""

    noise: float  # per-sample noise standard deviation, pA (times the k-mer's factor)
    dwell_shape: float  # gamma shape of the dwell times: lower is more variable
    jitter: float  # standard deviation of an event's mean around its k-mer level, pA
    drift: float  # amplitude of the slow baseline drift, pA
    read_scale: float  # standard deviation of the per-read gain (log-normal)
    read_shift: float  # standard deviation of the per-read offset, pA
    mean_dwell: float = MEAN_DWELL

    @classmethod
    def at(cls, difficulty: float) -> Knobs:
        return cls(**knobs_at(_LEVELS, difficulty))


# Knob values at difficulty 0, 0.5 (the default) and 1.
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "noise": (1.0, 2.0, 3.5),
    "dwell_shape": (8.0, 3.0, 1.5),
    "jitter": (0.3, 1.0, 2.0),
    "drift": (0.5, 3.0, 8.0),
    "read_scale": (0.03, 0.08, 0.15),
    "read_shift": (2.0, 5.0, 10.0),
}


@dataclass(frozen=True, eq=False)
class SquiggleBatch:
    """Segments and what went into them (``current`` and ``kmer`` for tests, diagnostics)."""

    signal: np.ndarray  # float32 [n, L], normalised per read (median 0, MAD-sd 1)
    labels: np.ndarray  # int32 [n, max_len], bases 0..3 then -1
    current: np.ndarray  # float32 [n, L], the raw current in pA before normalisation
    kmer: np.ndarray  # int16 [n, L], code of the k-mer in the pore at every sample

    @property
    def lengths(self) -> np.ndarray:
        """Bases per segment (int64 [n])."""
        return label_lengths(self.labels)


def label_lengths(labels: np.ndarray) -> np.ndarray:
    """Bases per row of a -1-padded label array."""
    return np.asarray(np.sum(labels >= 0, axis=1), dtype=np.int64)


def make_dataset(
    n: int,
    seed: SeedLike,
    difficulty: float = DEFAULT_DIFFICULTY,
    segment_length: int = SEGMENT_LENGTH,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` normalised segments (float32 [n, L]) and their labels (int32, -1-padded)."""
    batch = generate(n, seed, Knobs.at(difficulty), segment_length)
    return batch.signal, batch.labels


def generate(
    n: int,
    seed: SeedLike,
    knobs: Knobs | None = None,
    segment_length: int = SEGMENT_LENGTH,
    pore: PoreModel = PORE,
) -> SquiggleBatch:
    """``n`` segments cut from ``ceil(n / SEGMENTS_PER_READ)`` simulated reads (the last
    read's extra segments are dropped); deterministic for a given seed."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if segment_length < 1:
        raise ValueError(f"segment_length must be >= 1, got {segment_length}")
    knobs = knobs or Knobs.at(DEFAULT_DIFFICULTY)
    root = seed_sequence(seed)
    n_reads = -(-n // SEGMENTS_PER_READ)
    parts = [
        _reads(
            min(_CHUNK_READS, n_reads - start),
            np.random.default_rng(child(root, i)),
            knobs,
            segment_length,
            pore,
        )
        for i, start in enumerate(range(0, n_reads, _CHUNK_READS))
    ]
    width = max(p.labels.shape[1] for p in parts)
    labels = np.concatenate(
        [
            np.pad(p.labels, ((0, 0), (0, width - p.labels.shape[1])), constant_values=-1)
            for p in parts
        ]
    )
    return SquiggleBatch(
        signal=np.concatenate([p.signal for p in parts])[:n],
        labels=_trim(labels[:n]),
        current=np.concatenate([p.current for p in parts])[:n],
        kmer=np.concatenate([p.kmer for p in parts])[:n],
    )


def normalise(current: np.ndarray) -> np.ndarray:
    """Median/MAD normalisation along the last axis (float32)."""
    median = np.median(current, axis=-1, keepdims=True)
    mad = np.median(np.abs(current - median), axis=-1, keepdims=True) * MAD_TO_SD
    return ((current - median) / np.maximum(mad, 1e-6)).astype(np.float32)


def _reads(
    m: int, rng: np.random.Generator, knobs: Knobs, length: int, pore: PoreModel
) -> SquiggleBatch:
    """``m`` reads of ``SEGMENTS_PER_READ * length`` samples, cut into segments."""
    samples = SEGMENTS_PER_READ * length
    # Enough bases that the events cover every sample, with a wide margin (checked below).
    n_bases = int(samples / knobs.mean_dwell * 1.3) + 64 + K
    n_events = n_bases - K + 1
    seq = rng.integers(0, 4, (m, n_bases), dtype=np.int64)
    code = sum(seq[:, j : j + n_events] * 4 ** (K - 1 - j) for j in range(K))
    scale = (knobs.mean_dwell - 0.5) / knobs.dwell_shape  # flooring loses ~0.5 on average
    dwell = 1 + np.floor(rng.gamma(knobs.dwell_shape, scale, (m, n_events))).astype(np.int64)
    ends = np.cumsum(dwell, axis=1)
    while (short := np.flatnonzero(ends[:, -1] < samples)).size:  # vanishingly rare
        extra = rng.gamma(knobs.dwell_shape, scale, (short.size, n_events))
        dwell[short] = 1 + np.floor(extra).astype(np.int64)
        ends[short] = np.cumsum(dwell[short], axis=1)

    # Event of every sample: each event repeated for its dwell, cut at the read's end.
    starts = ends - dwell
    kept = np.clip(samples - starts, 0, dwell)
    event = np.repeat(np.arange(m * n_events), kept.ravel()).reshape(m, samples)
    event -= np.arange(m)[:, None] * n_events
    t = np.arange(samples)

    # Per-sample work in float32: it is most of the cost, and pA need no more precision.
    f4 = np.float32
    gain = np.exp(knobs.read_scale * rng.standard_normal((m, 1), dtype=f4))
    shift = knobs.read_shift * rng.standard_normal((m, 1), dtype=f4)
    level = pore.level[code] + knobs.jitter * rng.standard_normal((m, n_events), dtype=f4)
    kmer = np.take_along_axis(code, event, axis=1)
    current = np.take_along_axis(level, event, axis=1)
    noise = rng.standard_normal((m, samples), dtype=f4)
    noise *= pore.noise[kmer]
    current += f4(knobs.noise) * noise
    phase = 2 * np.pi * t.astype(f4)
    for _ in range(2):  # slow drift: two sinusoids of random period and phase
        period = rng.uniform(1500.0, 6000.0, (m, 1)).astype(f4)
        start = rng.uniform(0.0, 2 * np.pi, (m, 1)).astype(f4)
        amplitude = (knobs.drift * rng.uniform(0.5, 1.0, (m, 1))).astype(f4)
        current += amplitude * np.sin(phase / period + start)
    current *= gain
    current += shift

    # Labels: the central base of every event whose midpoint falls in the segment.
    segment = (starts + ends) // (2 * length)  # floor(midpoint / length)
    inside = segment < SEGMENTS_PER_READ
    row = (np.arange(m)[:, None] * SEGMENTS_PER_READ + segment)[inside]
    base = seq[:, K // 2 : K // 2 + n_events][inside]
    counts = np.bincount(row, minlength=m * SEGMENTS_PER_READ)
    position = np.arange(row.size) - (np.cumsum(counts) - counts)[row]
    labels = np.full((m * SEGMENTS_PER_READ, int(counts.max())), -1, dtype=np.int32)
    labels[row, position] = base

    return SquiggleBatch(
        signal=normalise(current).reshape(-1, length),
        labels=labels,
        current=current.reshape(-1, length),
        kmer=kmer.astype(np.int16).reshape(-1, length),
    )


def _trim(labels: np.ndarray) -> np.ndarray:
    """Drop padding columns that no row uses."""
    return labels[:, : int(label_lengths(labels).max(initial=0))]
