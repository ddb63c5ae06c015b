"""Synthetic CAM5-like patches for the atmospheric-river (AR) task of Liu et al. (2016).

A patch is 148 x 224 grid points (0.25 degrees, about 25 km apart: 37 degrees of
latitude by 56 of longitude, the size of the seed's AR crops) of two variables: TMQ
(precipitable water, kg/m^2) and LANDFRAC (land fraction: 1 land, 0 sea, fractional on
the coast). Axis 1 runs south to north, axis 2 west to east.

Every patch is a crop of a northern-hemisphere west coast (land to the east, a
meandering coastline of random position and tilt) with a background of moisture
falling poleward from the tropical edge, smooth multiplicative noise, and drier air
inland. Weather systems are moisture plumes added to TMQ: Gaussian across their axis,
bounded along it, slightly curved, raining out (decaying) over land.

* positives (label 1) hold an atmospheric river: a long (90-200 px, often entering from
  the patch edge), narrow (sigma 5-10 px) plume from the tropical south-west that makes
  landfall on the coast and penetrates inland.
* negatives (label 0) hold nothing or a distractor: an offshore plume (as long and
  narrow as an AR, but ending short of the coast or running along it), a short plume
  (narrow and landfalling, but shorter than an AR) or a broad, round moist blob
  (possibly over the coast). Positives may hold a second distractor.

``difficulty`` in [0, 1] weakens the rivers, strengthens the noise and the distractors,
makes distractors more frequent, brings offshore plumes closer to the coast and short
plumes closer to an AR's length (see ``_Knobs``). Generation is vectorised over chunks
of samples (``parallel.run_chunks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, run_chunks, seed_sequence
from benchmarks_sci.weather.fields import RedNoise
from benchmarks_sci.weather.kinds import EVENT, balanced_labels, main_kinds

CHANNELS: tuple[str, ...] = ("TMQ", "LANDFRAC")
HEIGHT, WIDTH = 148, 224
AR_SHAPE: tuple[int, int, int] = (HEIGHT, WIDTH, len(CHANNELS))
DEFAULT_DIFFICULTY = 0.5

#: Kind of the main system of each sample, as stored in ``ARBatch.kind``.
KINDS: tuple[str, ...] = (
    "none",
    "atmospheric_river",
    "offshore_plume",
    "short_plume",
    "moist_blob",
)
ATMOSPHERIC_RIVER = EVENT
_DISTRACTORS = np.arange(2, len(KINDS), dtype=np.int8)
_CHUNK = 32  # samples per chunk: [32, 148, 224] float32 temporaries of 4 MB
_RAMP = 10.0  # px over which a plume fades in and out along its axis

_NOISE = RedNoise((HEIGHT, WIDTH), shortest=24.0, scale=60.0, slope=3.0)
_ROWS = np.arange(HEIGHT, dtype=np.float32)
_COLS = np.arange(WIDTH, dtype=np.float32)


@dataclass(frozen=True)
class ARBatch:
    """Patches in physical units and what was put into them (for tests, diagnostics)."""

    x: np.ndarray  # float32 [n, 148, 224, 2]
    y: np.ndarray  # int64 [n], 1 = atmospheric river
    kind: np.ndarray  # int8 [n], index into KINDS of the main system
    # float32 [n, 2]: (row, col) of the main plume's downstream anchor (the landfall
    # point of a river, the tip of an offshore plume), the patch centre if none
    anchor: np.ndarray


@dataclass(frozen=True)
class _Knobs:
    """What ``difficulty`` controls: piecewise linear through the values of ``_LEVELS``."""

    noise: float  # standard deviation of the multiplicative (log) background noise
    ar_low: float  # range of the rivers' TMQ anomaly on their axis, kg/m^2
    ar_high: float
    gap_low: float  # range of the distance of offshore plumes' tips from the coast, px
    gap_high: float
    short_high: float  # longest short plume, px (rivers are >= 90 px)
    p_distractor: float  # probability that a negative holds a distractor
    p_extra: float  # probability that a positive also holds a distractor
    distractor: float  # multiplier of the distractors' strength

    @classmethod
    def at(cls, d: float) -> _Knobs:
        return cls(**knobs_at(_LEVELS, d))


# Knob values at difficulty 0, 0.5 (the default, tuned so that the seed's ConvNet
# reaches about 90 % as in the seed's table) and 1.
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "noise": (0.1, 0.18, 0.3),
    "ar_low": (12.0, 7.0, 3.0),
    "ar_high": (28.0, 20.0, 10.0),
    "gap_low": (40.0, 15.0, 3.0),
    "gap_high": (80.0, 45.0, 15.0),
    "short_high": (35.0, 50.0, 75.0),
    "p_distractor": (0.3, 0.9, 1.0),
    "p_extra": (0.05, 0.4, 0.6),
    "distractor": (0.6, 1.0, 1.3),
}


@dataclass
class _Plumes:
    """Parameters of a batch of moisture plumes, one float32 entry per plume."""

    row: np.ndarray  # downstream anchor, px
    col: np.ndarray
    angle: np.ndarray  # direction of the flow, radians counter-clockwise from east
    upstream: np.ndarray  # extent upstream of the anchor, px
    downstream: np.ndarray  # extent downstream of the anchor, px
    width: np.ndarray  # Gaussian sigma across the axis, px
    curvature: np.ndarray  # 1/px: the axis bends by curvature * s^2
    amplitude: np.ndarray  # TMQ anomaly on the axis, kg/m^2


def make_ar_dataset(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches (float32 [n, 148, 224, 2], physical units) and labels (int64 [n]).

    Exactly ``n // 2`` positives, in random order; deterministic for a given seed,
    whatever ``threads`` (default: the cores this process may use).
    """
    batch = generate_ar(n, seed, difficulty, threads)
    return batch.x, batch.y


def generate_ar(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> ARBatch:
    """Like ``make_ar_dataset``, also returning what each patch holds."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    knobs = _Knobs.at(difficulty)
    root = seed_sequence(seed)
    rng = np.random.default_rng(child(root, 0))
    y = balanced_labels(n, rng)
    x = np.empty((n, *AR_SHAPE), dtype=np.float32)
    kind = np.zeros(n, dtype=np.int8)
    anchor = np.full((n, 2), ((HEIGHT - 1) / 2, (WIDTH - 1) / 2), dtype=np.float32)

    def chunk(i: int, sl: slice) -> None:
        crng = np.random.default_rng(child(root, 1 + i))
        m = sl.stop - sl.start
        coast = _coastline(m, crng)  # [m, H]: column of the coast on every row
        decay = _inland_decay(coast, crng)  # [m, H, W]: 1 at sea, falling inland
        tmq = _background(decay, knobs, crng)
        main = main_kinds(y[sl], knobs.p_distractor, _DISTRACTORS, crng)
        extra = np.zeros(m, np.int8)
        pick = (y[sl] == 1) & (crng.random(m) < knobs.p_extra)
        extra[pick] = crng.choice(_DISTRACTORS, size=int(pick.sum()))
        plumes = np.zeros_like(tmq)
        for kinds in (main, extra):
            idx = np.flatnonzero(kinds)
            p = _draw(kinds[idx], coast[idx], knobs, crng)
            plumes[idx] += _render(p)
            if kinds is main:
                anchor[sl][idx] = np.stack([p.row, p.col], axis=1)
        plumes *= decay  # plumes rain out over land
        tmq += plumes
        out = x[sl]
        out[..., 0] = tmq
        np.clip(_COLS - coast[:, :, None] + 0.5, 0.0, 1.0, out=tmq)
        out[..., 1] = tmq
        kind[sl] = main

    run_chunks(n, _CHUNK, chunk, threads)
    return ARBatch(x=x, y=y, kind=kind, anchor=anchor)


def _coastline(m: int, rng: np.random.Generator) -> np.ndarray:
    """Column of the coast on every row [m, H]: random position and tilt, plus a few
    random meanders (bays and capes of 3-10 px over 25-120 px)."""
    centre = rng.uniform(0.62, 0.8, (m, 1)) * WIDTH
    tilt = rng.uniform(-0.25, 0.25, (m, 1))  # columns per row
    rows = _ROWS - (HEIGHT - 1) / 2
    coast = centre + tilt * rows
    for _ in range(3):
        wavelength = rng.uniform(25.0, 120.0, (m, 1))
        phase = rng.uniform(0.0, 2 * np.pi, (m, 1))
        amplitude = rng.uniform(1.0, 3.5, (m, 1))
        coast = coast + amplitude * np.sin(2 * np.pi * rows / wavelength + phase)
    return coast.astype(np.float32)


def _inland_decay(coast: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """exp(-(distance inland) / L) [m, H, W], 1 over the sea; L is 15-40 px per patch.

    Separable, since the distance is ``col - coast[row]``: an outer product and a
    minimum instead of an exponential per grid point.
    """
    length = rng.uniform(15.0, 40.0, (coast.shape[0], 1)).astype(np.float32)
    middle = WIDTH / 2
    rows = np.exp((coast - middle) / length)[:, :, None]
    cols = np.exp(-(_COLS - middle) / length[:, :, None])
    return np.minimum(rows * cols, 1.0)


def _background(decay: np.ndarray, k: _Knobs, rng: np.random.Generator) -> np.ndarray:
    """TMQ [m, H, W] without systems: tropical moisture decaying poleward, log-normal
    smooth noise, and drier air inland (by 20-50 % far from the coast)."""
    m = decay.shape[0]
    tropics = rng.uniform(28.0, 45.0, (m, 1)).astype(np.float32)
    polar = rng.uniform(4.0, 10.0, (m, 1)).astype(np.float32)
    scale = rng.uniform(35.0, 70.0, (m, 1)).astype(np.float32)  # px
    profile = polar + (tropics - polar) * np.exp(-_ROWS / scale)  # [m, H]
    noise = _NOISE.sample(rng, m)
    noise *= k.noise
    noise -= k.noise**2 / 2  # mean-preserving log-normal factor
    tmq = np.exp(noise, out=noise)
    tmq *= profile[:, :, None]
    dry = rng.uniform(0.2, 0.5, (m, 1, 1)).astype(np.float32)
    tmq *= (1.0 - dry) + dry * decay
    return tmq


def _draw(kinds: np.ndarray, coast: np.ndarray, k: _Knobs, rng: np.random.Generator) -> _Plumes:
    """Plume parameters for systems of ``kinds`` (no zeros) on patches with ``coast``."""
    n = kinds.size

    def u(low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
        return rng.uniform(low, high, n).astype(np.float32)

    offshore, short, blob = (kinds == KINDS.index(c) for c in KINDS[2:])
    s = k.distractor
    row = u(0.35 * HEIGHT, 0.75 * HEIGHT)  # the mid-latitudes of the patch
    at_coast = coast[np.arange(n), np.rint(row).astype(np.intp)]
    col = at_coast.copy()
    col[offshore] -= u(k.gap_low, k.gap_high)[offshore]
    col[blob] += u(-70.0, 10.0)[blob]
    angle = np.deg2rad(u(25.0, 70.0))  # from the south-west
    angle[offshore] = np.deg2rad(u(25.0, 95.0))[offshore]  # or along the coast
    angle[blob] = u(0.0, 2 * np.pi)[blob]
    upstream = u(90.0, 200.0)
    upstream[short] = u(15.0, k.short_high)[short]
    upstream[blob] = u(0.0, 20.0)[blob]
    downstream = u(15.0, 50.0)
    downstream[offshore] = 0.0
    downstream[blob] = u(0.0, 20.0)[blob]
    width = u(5.0, 10.0)
    width[short] = u(4.0, 8.0)[short]
    width[blob] = u(18.0, 32.0)[blob]
    amplitude = u(k.ar_low, k.ar_high)
    amplitude[offshore | short] = u(0.8 * k.ar_low * s, k.ar_high * s)[offshore | short]
    amplitude[blob] = u(8.0 * s, 18.0 * s)[blob]
    return _Plumes(
        row=row,
        col=col,
        angle=angle,
        upstream=upstream,
        downstream=downstream,
        width=width,
        curvature=u(-0.0015, 0.0015),
        amplitude=amplitude,
    )


def _render(p: _Plumes) -> np.ndarray:
    """TMQ anomalies [k, H, W] of k plumes: a Gaussian across the (bent) axis times a
    linear fade-in/out along it, over [-upstream, downstream] from the anchor."""
    cos = np.cos(p.angle)[:, None, None]
    sin = np.sin(p.angle)[:, None, None]
    dr = _ROWS[None, :, None] - p.row[:, None, None]  # [k, H, 1]
    dc = _COLS[None, None, :] - p.col[:, None, None]  # [k, 1, W]
    along = dc * cos + dr * sin  # [k, H, W]
    across = dr * cos - dc * sin
    across -= p.curvature[:, None, None] * np.square(along)
    across /= p.width[:, None, None]
    np.square(across, out=across)
    across *= -0.5
    plume = np.exp(across, out=across)
    # Fade: min(s + upstream, downstream - s) / ramp + 1/2, clipped to [0, 1].
    up = along + p.upstream[:, None, None]
    np.subtract(p.downstream[:, None, None], along, out=along)
    fade = np.minimum(up, along, out=up)
    fade *= 1.0 / _RAMP
    fade += 0.5
    plume *= np.clip(fade, 0.0, 1.0, out=fade)
    plume *= p.amplitude[:, None, None]
    return plume
