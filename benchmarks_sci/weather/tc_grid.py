"""The grid of the tropical-cyclone patches of ``synthetic`` and their background state:
channels, physical constants, the separable Fourier basis of the background fields, the
per-chunk workspace, and the background itself (mean state plus red-noise fields, winds
partly balanced with the pressure). ``synthetic`` adds the weather systems on top."""

from __future__ import annotations

import numpy as np

CHANNELS: tuple[str, ...] = ("PSL", "UBOT", "VBOT", "TMQ", "U850", "V850", "T200", "T500")
SIZE = 32
TC_SHAPE: tuple[int, int, int] = (SIZE, SIZE, len(CHANNELS))

PSL, UBOT, VBOT, TMQ, U850, V850, T200, T500 = range(len(CHANNELS))
NC = len(CHANNELS)
OMEGA = 7.292e-5  # Earth's rotation rate, 1/s
RHO = 1.15  # near-surface air density, kg/m^3
DX = 25e3  # grid spacing, m
PERIOD = 48  # period (px) of the background's Fourier basis; > SIZE: no visible wrap
KMAX = 6  # highest background wavenumber: wavelength 48 / 6 = 8 px
KMAX_SMOOTH = 3  # ... of the smooth fields (pressure, temperature, shear)
CHUNK = 512  # samples generated together: temporaries of ~50 MB, reused
PLANES = 5  # per-system planes mixed into the 8 channels (see synthetic._render)


class Basis:
    """Separable Fourier basis of the background fields, its spectra and d/d(row)."""

    def __init__(self) -> None:
        i = np.arange(SIZE, dtype=np.float64)
        k = np.arange(1, KMAX + 1)
        phase = 2 * np.pi * np.outer(i, k) / PERIOD
        cols = [np.ones(SIZE), (i - (SIZE - 1) / 2) / (SIZE / 2)]  # constant, ramp
        wavenumber = [0.0, np.nan]  # the ramp carries the mean state only, never noise
        for j in range(KMAX):
            cols += [np.cos(phase[:, j]), np.sin(phase[:, j])]
            wavenumber += [float(k[j])] * 2
        self.b = np.stack(cols, axis=1).astype(np.float32)  # [32, M]
        self.m = self.b.shape[1]
        kw = np.array(wavenumber)
        # d/d(row) of the basis as a matrix on coefficients: B' = B @ deriv.
        deriv = np.zeros((self.m, self.m))
        for j in range(KMAX):
            c, s, w = 2 + 2 * j, 3 + 2 * j, 2 * np.pi * k[j] / PERIOD
            deriv[s, c], deriv[c, s] = -w, w
        self.deriv = deriv.astype(np.float32)
        # cos^2 + sin^2 = 1: each cos/sin column holds half of its wavenumber's variance,
        # so the pointwise variance of a field is exactly sum(amp^2 * weights).
        h = np.where(kw == 0, 1.0, 0.5) * np.isfinite(kw)
        self.weights = np.outer(h, h)
        kk = np.hypot(*np.meshgrid(np.nan_to_num(kw), np.nan_to_num(kw), indexing="ij"))
        self.rough = self._spectrum(kk, k0=2.0, slope=2.5, size=self.m)
        # Smooth fields: < 0.1 % of their variance lies beyond wavenumber 3; not drawn.
        self.ms = 2 + 2 * KMAX_SMOOTH
        self.smooth = self._spectrum(kk, k0=1.0, slope=4.0, size=self.ms)
        grad2 = self.smooth**2 * self.weights[: self.ms, : self.ms]
        w_col = 2 * np.pi * np.nan_to_num(kw[: self.ms]) / PERIOD / DX  # 1/m
        # r.m.s. d/dy (per metre) of a unit-variance smooth field, to scale its winds.
        self.smooth_grad = float(np.sqrt(np.sum(grad2 * w_col[:, None] ** 2)))

    def _spectrum(self, kk: np.ndarray, k0: float, slope: float, size: int) -> np.ndarray:
        weights = self.weights[:size, :size]
        amp = (1 + (kk[:size, :size] / k0) ** 2) ** (-slope / 2) * (weights > 0)
        amp[0, 0] = 0.0  # the mean is set by the mean state
        amp /= np.sqrt(np.sum(amp**2 * weights))  # unit pointwise variance
        return amp.astype(np.float32)


BASIS = Basis()


class Workspace:
    """Temporaries of one chunk, allocated once per call and reused by every chunk."""

    def __init__(self, m: int) -> None:
        b, f4 = BASIS, np.float32
        self.smooth = np.empty((m, 5, b.ms, b.ms), f4)  # unit random sources
        self.rough = np.empty((m, 3, b.m, b.m), f4)
        self.coef = np.empty((m, b.m, NC, b.m), f4)  # [n, p(row), channel, q(column)]
        self.half = np.empty((m, b.m, NC, SIZE), f4)  # columns synthesised
        self.half_t = np.empty((m, b.m, SIZE, NC), f4)  # ... channels last
        self.planes = np.empty((m, PLANES, SIZE, SIZE), f4)
        self.fields = np.empty((m, SIZE * SIZE, NC), f4)
        self.gather = np.empty((m, SIZE, SIZE, NC), f4)


def background(
    out: np.ndarray,
    hemisphere: np.ndarray,
    noise: float,
    rng: np.random.Generator,
    ws: Workspace,
) -> None:
    """Write mean state + red-noise fields of a chunk into ``out`` [m, 32, 32, 8];
    ``noise`` multiplies every noise amplitude (``Knobs.noise``)."""
    m, b, s = out.shape[0], BASIS, BASIS.ms
    smooth = rng.standard_normal(dtype=np.float32, out=ws.smooth[:m])
    smooth *= b.smooth
    rough = rng.standard_normal(dtype=np.float32, out=ws.rough[:m])
    rough *= b.rough
    psl = smooth[:, 0]  # unit-variance pressure noise, reused for the balanced winds
    coef = ws.coef[:m]
    coef.fill(0.0)
    # Balanced part of the wind: u ~ -dp/dy, v ~ dp/dx, turning with the hemisphere.
    bal = (3.0 * noise / b.smooth_grad / DX * hemisphere).astype(np.float32)[:, None, None]
    d = b.deriv[:s, :s]
    wind = shear = 2.0 * noise
    coef[:, :, UBOT] = wind * rough[:, 0]
    coef[:, :, VBOT] = wind * rough[:, 1]
    coef[:, :s, UBOT, :s] -= bal * np.matmul(d, psl)
    coef[:, :s, VBOT, :s] += bal * np.matmul(psl, d.T)
    coef[:, :, U850] = 1.2 * coef[:, :, UBOT]
    coef[:, :, V850] = 1.2 * coef[:, :, VBOT]
    coef[:, :s, U850, :s] += shear * smooth[:, 1]
    coef[:, :s, V850, :s] += shear * smooth[:, 2]
    # Moisture collects in background lows (-psl); the temperatures are correlated.
    coef[:, :, TMQ] = 4.5 * noise * rough[:, 2]
    coef[:, :s, TMQ, :s] -= 2.2 * noise * psl
    coef[:, :s, PSL, :s] = 250.0 * noise * psl
    coef[:, :s, T500, :s] = 0.8 * noise * smooth[:, 3]
    coef[:, :s, T200, :s] = noise * (0.6 * smooth[:, 3] + 0.8 * smooth[:, 4])

    # Mean state: constant (p=0, q=0) and meridional ramp (p=1, q=0) coefficients.
    mean = rng.standard_normal((m, NC), dtype=np.float32)
    grad = rng.random((m, NC), dtype=np.float32)
    base = np.array([101200, -4, 0, 45, -4, 0, 219, 266], dtype=np.float32)
    spread = np.array([400, 4, 2.5, 6, 5, 3, 1.5, 2], dtype=np.float32)
    # Change from the patch centre to its poleward edge: pressure rises, moisture and
    # temperature fall; winds have no systematic gradient.
    slope = np.array([300, 0, 0, -8, 0, 0, -0.8, -1.5], dtype=np.float32)
    coef[:, 0, :, 0] += base + spread * mean
    coef[:, 1, :, 0] += slope * grad * hemisphere[:, None]  # +1: north is poleward

    # Synthesis B @ C @ B^T: columns first, then rows, which writes channels-last
    # straight into ``out``.
    half, half_t = ws.half[:m], ws.half_t[:m]
    np.matmul(coef.reshape(-1, b.m), b.b.T, out=half.reshape(-1, SIZE))
    np.copyto(half_t, half.transpose(0, 1, 3, 2))
    np.matmul(b.b, half_t.reshape(m, b.m, -1), out=out.reshape(m, SIZE, -1))
