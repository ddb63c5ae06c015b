"""Synthetic CAM5-like patches for the tropical-cyclone (TC) task of Liu et al. (2016).

A patch is 32 x 32 grid points (0.25 degrees, about 25 km apart) of 8 variables, in
physical units: PSL (Pa), UBOT/VBOT (lowest-level wind, m/s), TMQ (precipitable water,
kg/m^2), U850/V850 (wind at 850 hPa, m/s), T200/T500 (temperature at 200/500 hPa, K).
Axis 1 runs south to north (the row index grows northward), axis 2 west to east.

Every patch is a background state plus up to two weather systems:

* background: a random mean state (pressure, trade winds, moisture and temperature
  falling poleward, in either hemisphere) plus smooth random fields with a red spectrum
  (wavelengths of 8 px and more). Background winds are partly balanced with the
  background pressure (they turn cyclonically around its lows, in the sense of the
  hemisphere); the rest is independent noise and vertical shear.
* positives (label 1) hold a tropical cyclone: a small warm-core low with winds in
  gradient-wind balance (cyclonic, with surface inflow), a moist core and a warm anomaly
  aloft, placed somewhat off-centre with random size, shape and strength.
* negatives (label 0) hold nothing or a distractor sharing some of those traits: a
  cold-core low (rotating, but cold at 500 hPa and dry), a heat low (weak, shallow,
  barely rotating, dry), a moist convective blob (moist and warm aloft, no vortex), an
  anticyclone, or an easterly wave (a weak, elongated, moist trough). Positives may hold
  a second, distant distractor, so that the mere presence of one gives nothing away.

``difficulty`` in [0, 1] weakens the cyclones, strengthens the noise and the
distractors, makes distractors more frequent and moves systems further off-centre (see
``_Knobs``). Generation is vectorised over samples: only chunks of samples, the
channels and the two passes of systems are looped over, and the chunk's temporaries
are allocated once and reused (fresh memory is what costs most here).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, run_chunks, seed_sequence
from benchmarks_sci.weather.kinds import EVENT, balanced_labels, main_kinds
from benchmarks_sci.weather.normalize import channel_stats, standardize
from benchmarks_sci.weather.tc_grid import (
    CHANNELS,
    CHUNK,
    DX,
    NC,
    OMEGA,
    PLANES,
    PSL,
    RHO,
    SIZE,
    T200,
    T500,
    TC_SHAPE,
    TMQ,
    U850,
    UBOT,
    V850,
    VBOT,
    Workspace,
    background,
)

# CHANNELS, SIZE, TC_SHAPE (tc_grid) and channel_stats, standardize (normalize) moved
# out when this module was split; they stay importable from here.
__all__ = [
    "CHANNELS",
    "DEFAULT_DIFFICULTY",
    "KINDS",
    "SIZE",
    "TC_SHAPE",
    "TROPICAL_CYCLONE",
    "TCBatch",
    "channel_stats",
    "generate_tc",
    "make_tc_dataset",
    "standardize",
]

DEFAULT_DIFFICULTY = 0.5

#: Kind of the main system of each sample, as stored in ``TCBatch.kind``.
KINDS: tuple[str, ...] = (
    "none",
    "tropical_cyclone",
    "cold_core_low",
    "heat_low",
    "moist_blob",
    "anticyclone",
    "easterly_wave",
)
TROPICAL_CYCLONE = EVENT
_DISTRACTORS = np.arange(2, len(KINDS), dtype=np.int8)


@dataclass(frozen=True)
class TCBatch:
    """Patches in physical units and what was put into them (for tests, diagnostics)."""

    x: np.ndarray  # float32 [n, 32, 32, 8]
    y: np.ndarray  # int64 [n], 1 = tropical cyclone
    kind: np.ndarray  # int8 [n], index into KINDS of the main system
    centre: np.ndarray  # float32 [n, 2]: (row, col) of the main system, patch centre if none
    hemisphere: np.ndarray  # int8 [n]: +1 north, -1 south


@dataclass(frozen=True)
class _Knobs:
    """What ``difficulty`` controls: piecewise linear through the values of ``_LEVELS``."""

    noise: float  # multiplier of every background noise amplitude
    tc_dp_low: float  # range of the cyclones' central pressure deficit, Pa
    tc_dp_high: float
    offset: float  # main systems are centred within +-offset px of the patch centre
    p_distractor: float  # probability that a negative holds a distractor
    p_extra: float  # probability that a positive also holds a distant distractor
    distractor: float  # multiplier of the distractors' strength

    @classmethod
    def at(cls, d: float) -> _Knobs:
        return cls(**knobs_at(_LEVELS, d))


# Knob values at difficulty 0 (strong centred cyclones, few weak decoys), 0.5 (the
# default, tuned so that the seed ConvNet reaches ~95 % after 5 epochs on 8000 patches)
# and 1 (weak cyclones, always a decoy, strong ones).
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "noise": (0.6, 1.8, 2.4),
    "tc_dp_low": (1500.0, 100.0, 50.0),
    "tc_dp_high": (5000.0, 1300.0, 700.0),
    "offset": (2.0, 8.0, 10.0),
    "p_distractor": (0.2, 0.95, 1.0),
    "p_extra": (0.05, 0.4, 0.6),
    "distractor": (0.5, 1.4, 1.8),
}


@dataclass
class _Systems:
    """Parameters of a batch of weather systems, one float32 entry per system."""

    cy: np.ndarray  # centre row, px
    cx: np.ndarray  # centre column, px
    f: np.ndarray  # Coriolis parameter, 1/s (its sign is the hemisphere)
    ry: np.ndarray  # e-folding radius of the pressure anomaly along rows, px
    rx: np.ndarray  # ... along columns, px
    dp: np.ndarray  # central pressure deficit, Pa (negative: a high)
    rot: np.ndarray  # fraction of the balanced (gradient) wind that is realised
    inflow: np.ndarray  # surface radial / tangential wind
    w850: np.ndarray  # 850 hPa wind / surface wind
    inflow850: np.ndarray  # radial / tangential wind at 850 hPa
    q: np.ndarray  # TMQ anomaly, kg/m^2
    qr: np.ndarray  # TMQ radius / pressure radius
    t200: np.ndarray  # temperature anomaly at 200 hPa, K
    t500: np.ndarray  # ... at 500 hPa, K
    tr: np.ndarray  # temperature radius / pressure radius


# Drawn uniformly per system from (low, high) of its kind; see _ranges.
_DRAWN = ("ry", "aspect", "dp", "rot", "inflow", "w850", "inflow850", "q", "qr", "t200",
          "t500", "tr")  # fmt: skip


def _ranges(k: _Knobs) -> tuple[np.ndarray, np.ndarray]:
    """Low and high ends [kind, _DRAWN] of every kind's parameters.

    Cyclones: the warm core (``t200``, ``t500``) is per 1000 Pa of deficit and the
    moist core ``q`` is multiplied by 0.5 + deficit / 1000 Pa: both grow with depth.
    Distractors: ``s`` scales what makes them look like a cyclone. Winds at 850 hPa
    exceed surface winds more in cold-core systems (thermal wind) than in warm-core
    cyclones.
    """
    s, tc_dp = k.distractor, (k.tc_dp_low, k.tc_dp_high)
    rows = {
        "tropical_cyclone": ((1.5, 3.5), (0.8, 1.25), tc_dp, (1, 1), (0.3, 0.4),
            (1.05, 1.25), (0.05, 0.15), (2, 6), (1.8, 3.0), (0.7, 1.3), (0.35, 0.8),
            (1.2, 2.0)),
        "cold_core_low": ((4, 8), (0.7, 1.4), (400 * s, 2000 * s), (1, 1), (0.1, 0.2),
            (1.2, 1.5), (0, 0.05), (-4, 0), (1, 1.5), (0, 1.5), (-3 * s, -1 * s), (1, 1.5)),
        "heat_low": ((4, 9), (0.7, 1.4), (200 * s, 900 * s), (0, 0.3), (0.3, 0.6),
            (0.2, 0.6), (0, 0.1), (-8, -2), (1, 1.5), (-0.5, 0), (0.3 * s, 1.2 * s),
            (1, 1.5)),
        "moist_blob": ((2, 4), (0.7, 1.4), (0, 300 * s), (0, 0.2), (0.3, 0.6), (0.5, 1.0),
            (0, 0.1), (6 * s, 16 * s), (1.2, 2.0), (0.3 * s, 2 * s), (0.3 * s, 1.5 * s),
            (1, 1.5)),
        "anticyclone": ((5, 10), (0.7, 1.4), (-1500 * s, -300 * s), (1, 1), (0.1, 0.2),
            (0.9, 1.1), (0, 0.05), (-6, 0), (1, 1.5), (0, 1.5), (0, 1.5), (1, 1.5)),
        "easterly_wave": ((6, 12), (0.25, 0.5), (200 * s, 800 * s), (0.4, 0.8), (0.1, 0.3),
            (0.9, 1.2), (0, 0.1), (3 * s, 10 * s), (1, 1.5), (0, 0.5 * s), (0, 0.6 * s),
            (1, 1.5)),
    }  # fmt: skip
    table = np.array([rows[name] for name in KINDS[1:]], dtype=np.float32)
    # Row 0, "none": a system of zero amplitude (unit radii keep the shapes finite).
    none = np.zeros_like(table[:1])
    none[0, [_DRAWN.index(c) for c in ("ry", "aspect", "qr", "tr")]] = 1.0
    full = np.concatenate([none, table])
    return full[..., 0], full[..., 1]


def make_tc_dataset(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches (float32 [n, 32, 32, 8], physical units) and labels (int64 [n]).

    Exactly ``n // 2`` positives, in random order; deterministic for a given seed,
    whatever ``threads`` (default: the cores this process may use).
    Standardise with ``channel_stats`` / ``standardize`` before training.
    """
    batch = generate_tc(n, seed, difficulty, threads)
    return batch.x, batch.y


def generate_tc(
    n: int, seed: SeedLike, difficulty: float = DEFAULT_DIFFICULTY, threads: int | None = None
) -> TCBatch:
    """Like ``make_tc_dataset``, also returning what each patch holds."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    knobs = _Knobs.at(difficulty)
    root = seed_sequence(seed)
    rng = np.random.default_rng(child(root, 0))
    lo, hi = _ranges(knobs)
    y = balanced_labels(n, rng)
    hemisphere = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    lat = np.deg2rad(rng.uniform(6.0, 28.0, n))
    f = (hemisphere * 2 * OMEGA * np.sin(lat)).astype(np.float32)
    x = np.empty((n, *TC_SHAPE), dtype=np.float32)
    kind = np.zeros(n, dtype=np.int8)
    centre = np.full((n, 2), (SIZE - 1) / 2, dtype=np.float32)
    local = threading.local()

    def chunk(i: int, sl: slice) -> None:
        """Fill the samples of chunk i: own random stream, own slices."""
        if not hasattr(local, "ws"):
            local.ws = Workspace(min(n, CHUNK))
        ws: Workspace = local.ws
        crng = np.random.default_rng(child(root, 1 + i))
        background(x[sl], hemisphere[sl], knobs.noise, crng, ws)
        main = main_kinds(y[sl], knobs.p_distractor, _DISTRACTORS, crng)
        offset = crng.uniform(-knobs.offset, knobs.offset, (main.size, 2)).astype(np.float32)
        centre[sl][main > 0] += offset[main > 0]
        kind[sl] = main
        _add_systems(x[sl], main, centre[sl], f[sl], lo, hi, crng, ws)
        # Extra distractors of some positives: anywhere, often partly outside the patch.
        extra = np.zeros(main.size, np.int8)
        pick = (y[sl] == 1) & (crng.random(main.size) < knobs.p_extra)
        extra[pick] = crng.choice(_DISTRACTORS, size=int(pick.sum()))
        where = crng.uniform(-2.0, SIZE + 1.0, (main.size, 2)).astype(np.float32)
        _add_systems(x[sl], extra, where, f[sl], lo, hi, crng, ws)

    run_chunks(n, CHUNK, chunk, threads)
    return TCBatch(x=x, y=y, kind=kind, centre=centre, hemisphere=hemisphere)


def _add_systems(
    out: np.ndarray,
    kinds: np.ndarray,
    centre: np.ndarray,
    f: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
    ws: Workspace,
) -> None:
    """Add a system of ``kinds[i]`` centred at ``centre[i]`` to sample i (none if 0)."""
    # Most samples have a system: rendering all (zeros for "none") and adding in place
    # is cheaper than gathering and scattering the others.
    dense = np.count_nonzero(kinds) > kinds.size // 2
    idx = np.arange(kinds.size) if dense else np.flatnonzero(kinds)
    n = idx.size
    if n == 0:
        return
    kind = kinds[idx].astype(np.intp)
    v = lo[kind] + (hi[kind] - lo[kind]) * rng.random((n, len(_DRAWN)), dtype=np.float32)
    p = dict(zip(_DRAWN, v.T, strict=True))
    tc = kind == TROPICAL_CYCLONE
    per_kpa = np.where(tc, p["dp"] / 1000.0, 1.0).astype(np.float32)
    systems = _Systems(
        cy=centre[idx, 0], cx=centre[idx, 1], f=f[idx], ry=p["ry"], rx=p["ry"] * p["aspect"],
        dp=p["dp"], rot=p["rot"], inflow=p["inflow"], w850=p["w850"],
        inflow850=p["inflow850"], q=np.where(tc, p["q"] * (0.5 + per_kpa), p["q"]),
        qr=p["qr"], t200=p["t200"] * per_kpa, t500=p["t500"] * per_kpa, tr=p["tr"],
    )  # fmt: skip
    if dense:
        out += _render(systems, ws)
    else:  # out[idx] += fields, without the temporaries that fancy-index += allocates
        gathered = np.take(out, idx, axis=0, out=ws.gather[:n])
        gathered += _render(systems, ws)
        out[idx] = gathered


def _render(p: _Systems, ws: Workspace) -> np.ndarray:
    """Anomaly fields [k, 32, 32, 8] of k systems: separable Gaussians and the gradient
    wind around them.

    Each channel is a per-system mix of five planes (pressure shape, omega * dx,
    omega * dy, moisture shape, temperature shape): only the planes are computed
    element-wise, and one batched matmul mixes them into channels-last order.
    """
    k = p.cy.size
    grid = np.arange(SIZE, dtype=np.float32)
    dy = grid[None, :] - p.cy[:, None]  # [k, 32] px, north positive
    dx = grid[None, :] - p.cx[:, None]  # east positive
    planes = ws.planes[:k]

    def gauss(scale: np.ndarray | float, plane: int) -> None:
        """exp(-r^2 / 2 (scale R)^2) as an outer product of row and column factors."""
        rows = np.exp(-0.5 * (dy / (p.ry * scale)[:, None]) ** 2)
        cols = np.exp(-0.5 * (dx / (p.rx * scale)[:, None]) ** 2)
        np.einsum("ki,kj->kij", rows, cols, out=planes[:, plane])

    gauss(1.0, 0)
    gauss(p.qr, 3)
    gauss(p.tr, 4)
    # Gradient-wind balance for p' = -dp * g: omega^2 + |f| omega = |dp| g / (rho R^2),
    # omega = v_t / r being the angular velocity (1/s).
    half_f = (np.abs(p.f) / 2)[:, None, None]
    drive = (np.abs(p.dp) / (RHO * p.rx * p.ry * DX**2))[:, None, None]
    omega = planes[:, 1]  # scratch until overwritten by omega * dx below
    np.multiply(planes[:, 0], drive, out=omega)
    omega += half_f**2
    np.sqrt(omega, out=omega)
    omega -= half_f
    np.multiply(omega, dy[:, :, None], out=planes[:, 2])
    np.multiply(omega, dx[:, None, :], out=planes[:, 1])

    # Wind = c * (tangential s * (-dy, dx) - inflow * (dx, dy)) * omega, with c in m/px
    # carrying the sign of dp (a high turns the other way). s: cyclonic is
    # counter-clockwise in the north, clockwise in the south.
    mix = np.zeros((k, PLANES, NC), dtype=np.float32)
    s = np.sign(p.f)
    for ui, vi, speed, inflow in (
        (UBOT, VBOT, 0.85, p.inflow),
        (U850, V850, 0.85 * p.w850, p.inflow850),
    ):
        c = np.sign(p.dp) * p.rot * speed * DX
        mix[:, 1, ui], mix[:, 2, ui] = -c * inflow, -c * s
        mix[:, 1, vi], mix[:, 2, vi] = c * s, -c * inflow
    mix[:, 0, PSL] = -p.dp
    mix[:, 3, TMQ] = p.q
    mix[:, 4, T200] = p.t200
    mix[:, 4, T500] = p.t500
    fields = ws.fields[:k]
    np.matmul(planes.reshape(k, PLANES, -1).transpose(0, 2, 1), mix, out=fields)
    return fields.reshape(k, SIZE, SIZE, NC)
