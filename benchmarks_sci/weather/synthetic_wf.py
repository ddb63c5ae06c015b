"""Synthetic CAM5-like patches for the weather-front (WF) task of Liu et al. (2016).

A patch is 27 x 60 grid points (0.25 degrees, about 25 km apart, the size of the seed's
front crops) of three variables: TREFHT (2 m temperature, K), PRECT (precipitation rate,
mm/day) and PSL (sea-level pressure, Pa). Axis 1 runs south to north, axis 2 west to
east. Patches are northern mid-latitude crops centred on where a front would be, like
the seed's cropped, centred patches.

Every patch is a background state: temperature falling poleward, smooth red noise in
temperature and pressure, and scattered showers (thresholded rough noise). Systems are
drawn along a slightly curved line through the patch (within ``offset`` px of its
centre, from west-east to south-west-north-east):

* positives (label 1) hold a front: a sharp (0.6-1.6 px) step in temperature, the warm
  side equatorward, a band of precipitation on the cold side of the line (narrow and
  intense, or wide and moderate; patchy along the front), and a pressure trough on it.
* negatives (label 0) hold nothing or a distractor sharing part of that: a baroclinic
  zone (the same temperature contrast, spread over 5-12 px, no rain band), a rain band
  (a squall line: the band without the temperature step) or a dry boundary (a sharp
  but weaker step with neither rain nor trough). Positives may hold a second
  distractor (a rain band crossing the patch elsewhere).

``difficulty`` in [0, 1] weakens the fronts, strengthens the noise and the distractors
and makes distractors more frequent (see ``_Knobs``). Generation is vectorised over
chunks of samples (``parallel.run_chunks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, run_chunks, seed_sequence
from benchmarks_sci.weather.fields import RedNoise
from benchmarks_sci.weather.kinds import EVENT, balanced_labels, main_kinds

CHANNELS: tuple[str, ...] = ("TREFHT", "PRECT", "PSL")
HEIGHT, WIDTH = 27, 60
WF_SHAPE: tuple[int, int, int] = (HEIGHT, WIDTH, len(CHANNELS))
DEFAULT_DIFFICULTY = 0.5

#: Kind of the main system of each sample, as stored in ``WFBatch.kind``.
KINDS: tuple[str, ...] = ("none", "front", "baroclinic_zone", "rain_band", "dry_boundary")
FRONT = EVENT
RAIN_BAND = KINDS.index("rain_band")
_DISTRACTORS = np.arange(2, len(KINDS), dtype=np.int8)
_CHUNK = 256  # samples per chunk: [256, 27, 60] float32 temporaries of 1.7 MB

_SMOOTH = RedNoise((HEIGHT, WIDTH), shortest=12.0, scale=25.0, slope=3.0)
_ROUGH = RedNoise((HEIGHT, WIDTH), shortest=4.0, scale=6.0, slope=2.0)
_ROWS = np.arange(HEIGHT, dtype=np.float32)
_COLS = np.arange(WIDTH, dtype=np.float32)


@dataclass(frozen=True)
class WFBatch:
    """Patches in physical units and what was put into them (for tests, diagnostics).

    The main system's line passes through ``anchor`` in the direction ``angle``; its
    signed distance from a grid point (row r, column c; positive on the warm side) is
    ``(c - col) sin(angle) - (r - row) cos(angle) - curvature * along^2`` with
    ``along = (c - col) cos(angle) + (r - row) sin(angle)``.
    """

    x: np.ndarray  # float32 [n, 27, 60, 3]
    y: np.ndarray  # int64 [n], 1 = front
    kind: np.ndarray  # int8 [n], index into KINDS of the main system
    anchor: np.ndarray  # float32 [n, 2]: (row, col) of a point of the main system's line
    angle: np.ndarray  # float32 [n]: its direction, radians counter-clockwise from east
    curvature: np.ndarray  # float32 [n], 1/px


@dataclass(frozen=True)
class _Knobs:
    """What ``difficulty`` controls: piecewise linear through the values of ``_LEVELS``."""

    noise: float  # multiplier of the background noise amplitudes
    dt_low: float  # range of the fronts' temperature contrast, K
    dt_high: float
    rain_low: float  # range of the peak rain rate of the fronts' bands, mm/day
    rain_high: float
    offset: float  # systems pass within +-offset px (rows; 2x in columns) of the centre
    p_distractor: float  # probability that a negative holds a distractor
    p_extra: float  # probability that a positive also holds a rain band elsewhere
    distractor: float  # multiplier of the distractors' strength

    @classmethod
    def at(cls, d: float) -> _Knobs:
        return cls(**knobs_at(_LEVELS, d))


# Knob values at difficulty 0, 0.5 (the default: the seed's ConvNet reaches 91 % on the
# default validation set after 5 epochs on 8,000 patches, the seed's table 89 %; the
# baselines' defaults 76-88 %) and 1.
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "noise": (0.6, 1.2, 1.5),
    "dt_low": (6.0, 1.0, 0.8),
    "dt_high": (14.0, 7.0, 4.0),
    "rain_low": (10.0, 1.5, 1.0),
    "rain_high": (40.0, 18.0, 10.0),
    "offset": (1.0, 2.0, 3.0),
    "p_distractor": (0.3, 0.9, 1.0),
    "p_extra": (0.05, 0.3, 0.5),
    "distractor": (0.6, 1.1, 1.3),
}


@dataclass
class _Lines:
    """Parameters of a batch of line-shaped systems, one float32 entry per system."""

    row: np.ndarray  # a point of the line (row, column), px
    col: np.ndarray
    angle: np.ndarray  # direction of the line, radians counter-clockwise from east
    curvature: np.ndarray  # 1/px: the line bends by curvature * along^2
    dt: np.ndarray  # temperature contrast across the line, K (warm side equatorward)
    dt_width: np.ndarray  # e-folding half-width of the step (tanh), px
    rain: np.ndarray  # peak rain rate of the band, mm/day
    rain_offset: np.ndarray  # distance of the band's axis on the cold side, px
    rain_width: np.ndarray  # Gaussian sigma of the band, px
    trough: np.ndarray  # pressure deficit on the line, Pa
    trough_width: np.ndarray  # Gaussian sigma of the trough, px


def make_wf_dataset(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches (float32 [n, 27, 60, 3], physical units) and labels (int64 [n]).

    Exactly ``n // 2`` positives, in random order; deterministic for a given seed,
    whatever ``threads`` (default: the cores this process may use).
    """
    batch = generate_wf(n, seed, difficulty, threads)
    return batch.x, batch.y


def generate_wf(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> WFBatch:
    """Like ``make_wf_dataset``, also returning what each patch holds."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    knobs = _Knobs.at(difficulty)
    root = seed_sequence(seed)
    rng = np.random.default_rng(child(root, 0))
    y = balanced_labels(n, rng)
    x = np.empty((n, *WF_SHAPE), dtype=np.float32)
    kind = np.zeros(n, dtype=np.int8)
    anchor = np.full((n, 2), ((HEIGHT - 1) / 2, (WIDTH - 1) / 2), dtype=np.float32)
    angle = np.zeros(n, dtype=np.float32)
    curvature = np.zeros(n, dtype=np.float32)

    def chunk(i: int, sl: slice) -> None:
        crng = np.random.default_rng(child(root, 1 + i))
        m = sl.stop - sl.start
        fields = _background(m, knobs, crng)  # [3, m, H, W]
        main = main_kinds(y[sl], knobs.p_distractor, _DISTRACTORS, crng)
        extra = np.where((y[sl] == 1) & (crng.random(m) < knobs.p_extra), RAIN_BAND, 0)
        for kinds in (main, extra.astype(np.int8)):
            idx = np.flatnonzero(kinds)
            lines = _draw(kinds[idx], knobs, crng, elsewhere=kinds is not main)
            fields[:, idx] += _render(lines, crng)
            if kinds is main:
                anchor[sl][idx] = np.stack([lines.row, lines.col], axis=1)
                angle[sl][idx] = lines.angle
                curvature[sl][idx] = lines.curvature
        np.maximum(fields[1], 0.0, out=fields[1])  # no negative rain
        x[sl] = np.moveaxis(fields, 0, -1)
        kind[sl] = main

    run_chunks(n, _CHUNK, chunk, threads)
    return WFBatch(x=x, y=y, kind=kind, anchor=anchor, angle=angle, curvature=curvature)


def _background(m: int, k: _Knobs, rng: np.random.Generator) -> np.ndarray:
    """TREFHT, PRECT, PSL [3, m, H, W] without systems."""

    def per_sample(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, (m, 1, 1)).astype(np.float32)

    centre = (HEIGHT - 1) / 2
    rows = (_ROWS - centre)[None, :, None]  # [1, H, 1]
    cols = (_COLS - (WIDTH - 1) / 2)[None, None, :]
    fields = np.empty((3, m, HEIGHT, WIDTH), np.float32)
    # Temperature: 268-295 K, 0.05-0.25 K/px colder poleward, 1.5 K of smooth noise.
    fields[0] = per_sample(268.0, 295.0) - per_sample(0.05, 0.25) * rows
    fields[0] += 1.5 * k.noise * _SMOOTH.sample(rng, m)
    # Showers: the upper tail of rough noise, at 0-5 mm/day per unit over the threshold.
    rain = _ROUGH.sample(rng, m)
    rain -= per_sample(1.2, 2.2)
    np.maximum(rain, 0.0, out=rain)
    fields[1] = rain * (k.noise * per_sample(0.0, 5.0))
    # Pressure: a random mean, a uniform gradient of up to 40 Pa/px, 200 Pa of noise.
    gradient = per_sample(-40.0, 40.0), per_sample(-40.0, 40.0)
    fields[2] = 101_300.0 + 700.0 * rng.standard_normal((m, 1, 1), dtype=np.float32)
    fields[2] += gradient[0] * rows + gradient[1] * cols
    fields[2] += 200.0 * k.noise * _SMOOTH.sample(rng, m)
    return fields


def _draw(kinds: np.ndarray, k: _Knobs, rng: np.random.Generator, elsewhere: bool) -> _Lines:
    """Line parameters for systems of ``kinds`` (no zeros); anywhere in the patch when
    ``elsewhere``, else near its centre."""
    n = kinds.size

    def u(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, n).astype(np.float32)

    zone, band, dry = (kinds == KINDS.index(c) for c in KINDS[2:])
    s = k.distractor
    off = 3 * k.offset if elsewhere else k.offset
    row = (HEIGHT - 1) / 2 + u(-off, off)
    col = (WIDTH - 1) / 2 + 2 * u(-off, off)
    dt = u(k.dt_low, k.dt_high)
    dt[zone] = u(k.dt_low * s, k.dt_high * s)[zone]
    dt[band] = u(0.0, 1.5 * s)[band]
    dt[dry] = u(0.5 * k.dt_low * s, 0.6 * k.dt_high * s)[dry]
    dt_width = u(0.6, 1.6)
    dt_width[zone] = u(5.0, 12.0)[zone]
    narrow = u(0.0, 1.0) < 0.5  # cold-front-like: narrow, intense band; else wide
    rain = np.where(narrow, u(k.rain_low, k.rain_high), 0.5 * u(k.rain_low, k.rain_high))
    rain[band] = u(k.rain_low * s, k.rain_high * s)[band]
    rain[zone | dry] = 0.0
    trough = u(80.0, 300.0)
    trough[band] = u(0.0, 100.0 * s)[band]
    trough[zone] = u(0.0, 150.0 * s)[zone]
    trough[dry] = 0.0
    return _Lines(
        row=row,
        col=col,
        angle=np.deg2rad(u(10.0, 40.0)),
        curvature=u(-0.01, 0.01),
        dt=dt,
        dt_width=dt_width,
        rain=rain,
        rain_offset=np.where(narrow, u(0.5, 1.5), u(1.5, 3.5)),
        rain_width=np.where(narrow, u(0.7, 1.5), u(2.0, 3.5)),
        trough=trough,
        trough_width=u(2.0, 5.0),
    )


def _render(p: _Lines, rng: np.random.Generator) -> np.ndarray:
    """Anomalies [3, k, H, W] of k line systems: tanh temperature step, Gaussian rain
    band on the cold side (modulated along the line), Gaussian pressure trough."""
    k = p.row.size
    cos = np.cos(p.angle)[:, None, None]
    sin = np.sin(p.angle)[:, None, None]
    dr = _ROWS[None, :, None] - p.row[:, None, None]  # [k, H, 1]
    dc = _COLS[None, None, :] - p.col[:, None, None]  # [k, 1, W]
    along = dc * cos + dr * sin
    # Signed distance, positive on the warm (equatorward) side of a line at angle in
    # [-90, 90] degrees: the normal (sin, -cos) points south.
    across = dc * sin - dr * cos - p.curvature[:, None, None] * np.square(along)
    out = np.empty((3, k, HEIGHT, WIDTH), np.float32)

    def col(v: np.ndarray) -> np.ndarray:
        return v[:, None, None]

    out[0] = col(p.dt / 2) * np.tanh(across / col(p.dt_width))
    # Patchy rain: convective cells of rough noise along the band.
    cells = _ROUGH.sample(rng, k)
    cells *= 0.6
    cells += 1.0
    np.maximum(cells, 0.0, out=cells)
    band = np.exp(-0.5 * np.square((across + col(p.rain_offset)) / col(p.rain_width)))
    out[1] = col(p.rain) * band * cells
    out[2] = -col(p.trough) * np.exp(-0.5 * np.square(across / col(p.trough_width)))
    return out
