"""Synthetic high-gamma ECoG of spoken consonant-vowel syllables over ventral sensorimotor
cortex (vSMC), shaped like the data of Livezey, Bouchard & Chang (2019).

A trial is [electrodes, time]: high-gamma amplitude (z-score-like units) at 200 Hz from
-0.5 to 0.785 s around the consonant-vowel transition (258 samples).

Anatomy ("the subject", drawn once per seed): electrodes sit on a grid over vSMC,
``GRID_COLUMNS`` across the anterior-posterior axis, rows running dorsal to ventral. The
articulators are represented somatotopically along the dorsal-ventral axis (Bouchard et
al. 2013): larynx (dorsal), lips, jaw, tongue from tip to dorsum, velum, larynx (ventral).
Every cortical site in ``SITES`` has a spatial footprint: a Gaussian blob around its
centre, made patchy by a smooth random modulation; neighbouring sites overlap.

Syllables: a syllable is a set of articulatory gestures, each a Gaussian bump in time on
one site's footprint. The consonant's place picks the sites, its manner the timing and
extent (stops: brief closures; fricatives: longer constrictions with a raised jaw;
nasals: closure plus velum; approximants and laterals: weaker, broader, later), its
voicing the timing of the laryngeal gesture (voiced: during the constriction; voiceless:
after the release, as in voice-onset time); the vowel adds its gestures after the
transition (/a/: open jaw and low back tongue; /i/: high front tongue, spread lips;
/u/: high back tongue, rounded lips). Syllables that share a place (or major
articulator) therefore share spatial patterns and those that share a manner share
timing: the structure hierarchical clustering of a decoder's confusions recovers. A
small random class-specific component keeps all 57 patterns distinct beyond features.

Trial-to-trial variability: alignment jitter of the whole trial, speaking-rate changes
(the consonant's gestures stretch and shift relative to the vowel), per-gesture timing
and amplitude jitter, a per-trial gain, spatially and temporally correlated background
activity, white electrode noise, and per-session electrode gains and offsets that drift
within the session. The timing variability is the non-linear part: a class's trials
lie on a curved manifold around its mean, and voicing (the timing of the laryngeal
gesture relative to the constriction) and manner (stops and fricatives have gestures of
about equal area but different durations) are carried by relative timing, which survives the
jitter only for a read-out that can combine features non-linearly.

``difficulty`` in [0, 1] scales the noise and the jitter (see ``_LEVELS``). Everything is
vectorised over trials; chunks of ``_CHUNK`` trials bound the temporaries, and each chunk
has its own random stream, so results do not depend on anything but the arguments.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass

import numpy as np

from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.parallel import SeedLike, child, seed_sequence
from benchmarks_sci.speech.phonetics import (
    CONSONANT_OF_CLASS,
    CONSONANTS,
    N_CLASSES,
    VOWEL_OF_CLASS,
    VOWELS,
    Consonant,
    Vowel,
)

SAMPLE_RATE = 200  # Hz
WINDOW_START = -0.5  # s, relative to the consonant-vowel transition
N_TIME = 258  # samples: -0.5 to 0.785 s
TIMES: np.ndarray = WINDOW_START + np.arange(N_TIME) / SAMPLE_RATE
N_ELECTRODES = 86
GRID_COLUMNS = 6
DEFAULT_DIFFICULTY = 0.5

#: Cortical sites: centres (dorsal-ventral, anterior-posterior) on the unit sheet.
SITES: dict[str, tuple[tuple[float, float], ...]] = {
    "larynx": ((0.05, 0.5), (0.95, 0.5)),  # dorsal and ventral laryngeal areas
    "lips": ((0.20, 0.35),),  # closure and rounding (orbicularis oris)
    "lip_spread": ((0.24, 0.85),),
    "lower_lip": ((0.28, 0.6),),  # labiodental contact
    "jaw": ((0.40, 0.5),),
    "tongue_tip": ((0.52, 0.35),),  # dental
    "tongue_ridge": ((0.58, 0.6),),  # alveolar
    "tongue_blade": ((0.64, 0.35),),  # postalveolar
    "tongue_body": ((0.72, 0.6),),  # palatal, /i/
    "tongue_dorsum": ((0.79, 0.4),),  # velar, back vowels
    "velum": ((0.87, 0.6),),  # nasals
}
SITE_NAMES: tuple[str, ...] = tuple(SITES)
_SIGMA_DV, _SIGMA_AP = 0.07, 0.35  # footprint widths on the unit sheet
_PATCHINESS = 0.5  # relative size of the smooth random modulation of footprints

# Constriction sites of each place, with weights.
_PLACE_SITES: dict[str, tuple[tuple[str, float], ...]] = {
    "bilabial": (("lips", 1.0),),
    "labiodental": (("lower_lip", 1.0), ("lips", 0.3)),
    "labiovelar": (("lips", 1.0), ("tongue_dorsum", 0.5)),
    "dental": (("tongue_tip", 1.0),),
    "alveolar": (("tongue_ridge", 1.0),),
    "postalveolar": (("tongue_blade", 1.0), ("lips", 0.4)),  # /r/, /sh/ round the lips
    "palatal": (("tongue_body", 1.0),),
    "velar": (("tongue_dorsum", 1.0),),
    "glottal": (("larynx", 1.0),),
}
# Manner: (centre s, width s, amplitude) of the constriction, and extra gestures
# (site, amplitude) with the same timing.
_MANNER: dict[str, tuple[float, float, float, tuple[tuple[str, float], ...]]] = {
    "stop": (-0.08, 0.03, 1.0, (("jaw", 0.4),)),
    "nasal": (-0.10, 0.05, 0.8, (("velum", 0.8), ("jaw", 0.3))),
    "fricative": (-0.15, 0.08, 0.4, (("jaw", 0.4),)),  # about the area of a stop
    "approximant": (-0.04, 0.07, 0.5, ()),
    "lateral": (-0.06, 0.06, 0.6, (("tongue_dorsum", 0.3),)),
}
# Voicing: the same laryngeal gesture, during the constriction or after the release
# (voice-onset time): only its timing relative to the constriction tells them apart.
_VOICED = (-0.09, 0.04, 0.5)
_VOICELESS = (0.04, 0.04, 0.5)
_VOWEL_TIMING = (0.17, 0.09)
_VOWEL_VOICING = 0.4  # every vowel is voiced: a common laryngeal gesture
_VOWEL_SITES: dict[str, tuple[tuple[str, float], ...]] = {
    "a": (("jaw", 0.6), ("tongue_dorsum", 0.3)),
    "i": (("tongue_body", 0.6), ("lip_spread", 0.35)),
    "u": (("tongue_dorsum", 0.5), ("lips", 0.55)),
}
_IDIOSYNCRATIC = 0.15  # amplitude of the class-specific random gesture
_CONSONANT, _VOWEL, _OTHER = 0, 1, 2  # gesture parts: how speaking-rate changes move them
_CHUNK = 256  # trials generated together


@dataclass(frozen=True)
class Recording:
    """Trials in generation order, as a real session file would hold them."""

    x: np.ndarray  # float32 [n, electrodes, time]
    y: np.ndarray  # int64 [n], class index (phonetics.CV_NAMES)
    session: np.ndarray  # int64 [n], recording session of each trial


@dataclass(frozen=True)
class _Knobs:
    """What ``difficulty`` controls; piecewise linear through ``_LEVELS``."""

    white: float  # white electrode noise, sd
    background: float  # correlated background activity, sd
    jitter: float  # alignment jitter of the whole trial, sd in s
    rate: float  # speaking-rate variation: sd of the log stretch of the consonant
    consonant_shift: float  # shift of the consonant relative to the vowel, sd in s
    gesture_jitter: float  # timing jitter of each gesture, sd in s
    amplitude: float  # per-gesture amplitude jitter, sd of the log
    gain: float  # per-trial gain, sd of the log
    session_gain: float  # per-session electrode gains, sd of the log
    session_offset: float  # per-session electrode offsets, sd
    drift: float  # drift of the offsets across a session (start to end), sd

    @classmethod
    def at(cls, d: float) -> _Knobs:
        return cls(**knobs_at(_LEVELS, d))


# Knob values at difficulty 0, 0.5 (the default) and 1. The default's timing jitter is
# large against its noise, so that a non-linear read-out pays (as deep nets beat linear
# ones in the paper): at 100 trials per syllable, 50 Hz and 20 epochs, softmax
# regression reached 47.7 % validation and 53.0 % test accuracy, the default decoder
# (one hidden layer of 512, dropout) 56.0 % and 56.8 % (chance: 1.8 %;
# ``python -m supervisor.perf.speech_linear``).
_LEVELS: dict[str, tuple[float, float, float]] = {
    "difficulty": (0.0, 0.5, 1.0),
    "white": (0.05, 0.15, 0.3),
    "background": (0.03, 0.1, 0.2),
    "jitter": (0.05, 0.12, 0.15),
    "rate": (0.1, 0.3, 0.4),
    "consonant_shift": (0.01, 0.02, 0.04),
    "gesture_jitter": (0.005, 0.01, 0.02),
    "amplitude": (0.15, 0.3, 0.45),
    "gain": (0.1, 0.2, 0.3),
    "session_gain": (0.05, 0.15, 0.25),
    "session_offset": (0.1, 0.3, 0.5),
    "drift": (0.1, 0.3, 0.5),
}


@dataclass(frozen=True)
class _Gestures:
    """Every class's gestures, padded to the same count (amplitude 0 pads)."""

    map_index: np.ndarray  # int [57, G]: row of the spatial map table
    centre: np.ndarray  # float [57, G], s
    width: np.ndarray  # float [57, G], s
    amplitude: np.ndarray  # float [57, G]
    part: np.ndarray  # int [57, G]: _CONSONANT, _VOWEL or _OTHER


def electrode_positions(n_electrodes: int = N_ELECTRODES) -> np.ndarray:
    """(dorsal-ventral, anterior-posterior) position [E, 2] of each electrode on the sheet."""
    rows = -(-n_electrodes // GRID_COLUMNS)
    i = np.arange(n_electrodes)
    return np.stack(
        [(i // GRID_COLUMNS + 0.5) / rows, (i % GRID_COLUMNS + 0.5) / GRID_COLUMNS], axis=1
    )


def templates(seed: SeedLike, n_electrodes: int = N_ELECTRODES) -> np.ndarray:
    """Noise-free mean response float32 [57, E, T] of every syllable for the subject of
    ``seed`` (no jitter, no sessions): the structure the generator puts into the data."""
    root = seed_sequence(seed)
    maps = _spatial_maps(np.random.default_rng(child(root, 0)), n_electrodes)
    g = _gestures()
    bumps = _bump(TIMES, g.centre[..., None], g.width[..., None]) * g.amplitude[..., None]
    return np.einsum("cge,cgt->cet", maps[g.map_index], bumps).astype(np.float32)


def generate(
    trials_per_class: int,
    seed: SeedLike,
    difficulty: float = DEFAULT_DIFFICULTY,
    n_electrodes: int = N_ELECTRODES,
    n_sessions: int = 4,
    sample_rate: int = SAMPLE_RATE,
) -> Recording:
    """``trials_per_class`` x 57 trials of the subject of ``seed``, in random order,
    spread over ``n_sessions`` consecutive sessions. Deterministic for a seed.

    At a ``sample_rate`` below 200 Hz the trials are distributed exactly as the 200 Hz
    trials averaged over bins (``bin_average``): the smooth parts are binned before they
    are mixed, the white noise is drawn at the binned rate with the binned variance.
    """
    if trials_per_class < 1 or n_electrodes < 1 or n_sessions < 1:
        raise ValueError("trials_per_class, n_electrodes and n_sessions must be >= 1")
    knobs = _Knobs.at(difficulty)
    factor = decimation(SAMPLE_RATE, sample_rate)
    root = seed_sequence(seed)
    maps = _spatial_maps(np.random.default_rng(child(root, 0)), n_electrodes)
    g = _gestures()
    rng = np.random.default_rng(child(root, 1))
    n = trials_per_class * N_CLASSES
    y = rng.permutation(np.repeat(np.arange(N_CLASSES, dtype=np.int64), trials_per_class))
    # Sessions are consecutive blocks of trials; offsets drift linearly within each.
    session = np.arange(n) * n_sessions // n
    progress = (np.arange(n) * n_sessions / n) % 1.0 - 0.5
    s_gain = np.exp(rng.normal(0.0, knobs.session_gain, (n_sessions, n_electrodes)))
    s_offset = rng.normal(0.0, knobs.session_offset, (n_sessions, n_electrodes))
    s_drift = rng.normal(0.0, knobs.drift, (n_sessions, n_electrodes))
    mixing = _spatial_mixing(n_electrodes)
    basis = bin_average(_temporal_basis(), factor)
    white = np.float32(knobs.white / np.sqrt(factor))  # sd of a mean of `factor` samples

    x = np.empty((n, n_electrodes, N_TIME // factor), dtype=np.float32)
    for i, start in enumerate(range(0, n, _CHUNK)):
        sl = slice(start, min(n, start + _CHUNK))
        crng = np.random.default_rng(child(root, 2 + i))
        out = x[sl]
        _signal(out, y[sl], g, maps, knobs, factor, crng)
        # Background activity: smooth in time (basis) and across neighbours (mixing).
        coef = mixing @ _normal(crng, (out.shape[0], n_electrodes, basis.shape[0]))
        out += knobs.background * (coef.reshape(-1, basis.shape[0]) @ basis).reshape(out.shape)
        out += white * _normal(crng, out.shape)
        ss = session[sl]
        out *= s_gain[ss][..., None].astype(np.float32)
        offset = s_offset[ss] + s_drift[ss] * progress[sl, None]
        out += offset[..., None].astype(np.float32)
    return Recording(x=x, y=y, session=session.astype(np.int64))


def decimation(rate: int, target: int) -> int:
    """The integer factor from ``rate`` down to ``target`` Hz; ValueError if none."""
    if target < 1 or rate % target:
        raise ValueError(f"cannot resample {rate} Hz to {target} Hz: not an integer factor")
    return rate // target


def bin_average(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive bins of ``factor`` samples of the last axis (float32); the
    trailing samples that do not fill a bin are dropped. ``a`` itself when factor is 1."""
    if factor == 1:
        return a
    n_bins = a.shape[-1] // factor
    binned = a[..., : n_bins * factor].reshape(*a.shape[:-1], n_bins, factor)
    return binned.mean(axis=-1, dtype=np.float32)


def _signal(
    out: np.ndarray,
    y: np.ndarray,
    g: _Gestures,
    maps: np.ndarray,
    k: _Knobs,
    factor: int,
    rng: np.random.Generator,
) -> None:
    """Write the jittered gestures of trials ``y`` into ``out`` [m, E, T / factor]."""
    m, n_g = y.size, g.centre.shape[1]
    centre, width, part = g.centre[y], g.width[y], g.part[y]
    consonant = part == _CONSONANT
    # Speaking rate stretches the consonant around the transition, and shifts it.
    stretch = np.exp(rng.normal(0.0, k.rate, (m, 1)))
    shift = rng.normal(0.0, k.consonant_shift, (m, 1))
    centre = np.where(consonant, centre * stretch + shift, centre)
    width = np.where(consonant, width * stretch, width)
    centre = (
        centre + rng.normal(0.0, k.jitter, (m, 1)) + rng.normal(0.0, k.gesture_jitter, (m, n_g))
    )
    # Log-normal jitter with unit mean, so that difficulty does not change the mean.
    amp = g.amplitude[y] * np.exp(
        rng.normal(0.0, k.amplitude, (m, n_g)) - k.amplitude**2 / 2
        + rng.normal(0.0, k.gain, (m, 1)) - k.gain**2 / 2
    )  # fmt: skip
    f4 = np.float32
    bumps = _bump(TIMES.astype(f4), centre[..., None].astype(f4), width[..., None].astype(f4))
    bumps = bin_average(bumps * amp[..., None].astype(f4), factor)
    np.matmul(maps[g.map_index[y]].transpose(0, 2, 1), bumps, out=out)


def _bump(t: np.ndarray, centre: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def _gestures() -> _Gestures:
    """The gesture table of the 57 syllables (see the module docstring)."""
    rows = [
        _syllable(CONSONANTS[c], VOWELS[v])
        for c, v in zip(CONSONANT_OF_CLASS, VOWEL_OF_CLASS, strict=True)
    ]
    n_g = max(len(r) for r in rows) + 1  # + the class-specific gesture
    table = np.zeros((N_CLASSES, n_g, 5))
    table[..., 2] = 1.0  # unit widths in the padding keep the bumps finite
    for c, row in enumerate(rows):
        table[c, : len(row)] = [(SITE_NAMES.index(s), t, w, a, p) for s, t, w, a, p in row]
        # Class-specific gesture on the class's own random map, mid-syllable.
        table[c, -1] = (len(SITES) + c, -0.02, 0.1, _IDIOSYNCRATIC, _OTHER)
    return _Gestures(
        map_index=table[..., 0].astype(np.int64),
        centre=table[..., 1],
        width=table[..., 2],
        amplitude=table[..., 3],
        part=table[..., 4].astype(np.int64),
    )


def _syllable(c: Consonant, v: Vowel) -> list[tuple[str, float, float, float, int]]:
    """(site, centre, width, amplitude, part) of every gesture of syllable ``c`` + ``v``."""
    t, w, a, extra = _MANNER[c.manner]
    gestures = [(s, t, w, a * weight, _CONSONANT) for s, weight in _PLACE_SITES[c.place]]
    if c.place != "glottal":
        gestures += [(s, t, w, a * weight, _CONSONANT) for s, weight in extra]
    t, w, a = _VOICED if c.voiced else _VOICELESS
    gestures.append(("larynx", t, w, a, _CONSONANT))
    t, w = _VOWEL_TIMING
    gestures += [(s, t, w, weight, _VOWEL) for s, weight in _VOWEL_SITES[v.name]]
    gestures.append(("larynx", t, w, _VOWEL_VOICING, _VOWEL))
    return gestures


def _spatial_maps(rng: np.random.Generator, n_electrodes: int) -> np.ndarray:
    """Footprints float32 [sites + 57, E]: the sites', then each class's own random map."""
    pos = electrode_positions(n_electrodes)
    maps = np.zeros((len(SITES) + N_CLASSES, n_electrodes))
    for i, centres in enumerate(SITES.values()):
        for dv, ap in centres:
            d2 = ((pos[:, 0] - dv) / _SIGMA_DV) ** 2 + ((pos[:, 1] - ap) / _SIGMA_AP) ** 2
            maps[i] += np.exp(-0.5 * d2)
    mixing = _spatial_mixing(n_electrodes)
    patches = mixing @ rng.standard_normal((n_electrodes, len(SITES)))
    maps[: len(SITES)] *= np.clip(1.0 + _PATCHINESS * patches.T, 0.0, None)
    maps[len(SITES) :] = (mixing @ rng.standard_normal((n_electrodes, N_CLASSES))).T
    peak = np.abs(maps).max(axis=1, keepdims=True)
    return (maps / np.where(peak > 0, peak, 1.0)).astype(np.float32)


def _spatial_mixing(n_electrodes: int, spacing: float = 1.0) -> np.ndarray:
    """[E, E] linear map from independent to spatially correlated unit-variance noise:
    a Gaussian kernel over grid distances (``spacing`` electrodes), rows normalised."""
    pos = electrode_positions(n_electrodes)
    rows = -(-n_electrodes // GRID_COLUMNS)
    grid = pos * np.array([rows, GRID_COLUMNS])  # in electrode spacings
    d2 = ((grid[:, None, :] - grid[None, :, :]) ** 2).sum(axis=-1)
    kernel = np.exp(-0.5 * d2 / spacing**2)
    return (kernel / np.sqrt((kernel**2).sum(axis=1, keepdims=True))).astype(np.float32)


def _temporal_basis(step: float = 0.04, width: float = 0.05) -> np.ndarray:
    """[K, T] Gaussian bumps every ``step`` s: coefficients -> smooth unit-variance signals."""
    knots = np.arange(WINDOW_START - 2 * width, TIMES[-1] + 2 * width, step)
    basis = _bump(TIMES[None, :], knots[:, None], width)
    return (basis / np.sqrt((basis**2).sum(axis=0)).mean()).astype(np.float32)


@functools.cache
def _normal_quantiles() -> np.ndarray:
    """float32 [65536]: standard-normal quantiles at the mid-points of 65536 equal-
    probability bins, rescaled to unit variance (tails reach +-4.3)."""
    inv_cdf = statistics.NormalDist().inv_cdf
    table = np.array([inv_cdf((k + 0.5) / 65536) for k in range(65536)], dtype=np.float32)
    return table / table.std()


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal float32 noise, quantised to 65536 levels: a lookup of random
    16-bit integers, several times faster than ``rng.standard_normal`` (which dominated
    the generation time); its first four moments match the normal's to 3 decimals."""
    return _normal_quantiles()[rng.integers(0, 65536, size=shape, dtype=np.uint16)]
