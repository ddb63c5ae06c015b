"""CosmoGAN data: the map transform, the data set object and the real-data files.

Maps enter the networks in "model space", s in [-1, 1) (the generator ends in tanh),
through the paper's transform of non-negative map intensities x:

    s = 2x / (x + a) - 1,        x = a (1 + s) / (1 - s)   (the inverse),

with a = the option ``transform_scale`` (x = a maps to s = 0; the paper used a = 4 for
its maps' units; the synthetic maps have mean 1, hence the default a = 1). The
transform compresses the bright tail that dominates convergence maps.

Real-data file layout (``.npz``, or ``.h5``/``.hdf5`` with the same names as datasets
at the root; HDF5 needs h5py):

* ``x_train``, ``x_val``, ``x_test``: float arrays [n, N, N] or [n, N, N, 1] of
  non-negative map intensities x in raw units (e.g. the shifted convergence
  1 + kappa / lambda of a log-normal model, or kappa - kappa_min), N = the option
  ``map_size`` (64, 128 or 256).
* ``y_train``, ``y_val``, ``y_test`` (optional; all three or none): per-map parameters,
  float [n] or [n, P] (the synthetic maps' are amplitude and slope, see ``synthetic``).
* ``param_names`` (optional): strings [P], the names of y's columns (default param0 ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks_sci import datafiles
from benchmarks_sci.splits import SPLITS


def to_model_space(x: npt.ArrayLike, scale: float) -> np.ndarray:
    """s = 2x / (x + a) - 1 = (x - a) / (x + a), float32, in [-1, 1) for x >= 0."""
    x = np.asarray(x, np.float32)
    a = np.float32(scale)
    return (x - a) / (x + a)


def to_raw(s: npt.ArrayLike, scale: float) -> np.ndarray:
    """x = a (1 + s) / (1 - s), the inverse of ``to_model_space``, float32."""
    s = np.asarray(s, np.float32)
    return np.float32(scale) * (1 + s) / (1 - s)


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class CosmoData:
    """Maps in model space, float32 [n, N, N, 1]; per-map parameters float32 [n, P] or None."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_val: np.ndarray
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    param_names: tuple[str, ...]  # names of the columns of y_* (empty without y)
    scale: float  # a of the transform
    clip: tuple[float, float]  # model-space range of the training maps

    @property
    def map_size(self) -> int:
        return int(self.x_train.shape[1])

    def raw_maps(self, s: np.ndarray) -> np.ndarray:
        """Generated model-space maps -> raw intensities, clipped to the training maps'
        range first: the inverse transform diverges as s -> 1, where a saturated tanh
        would otherwise turn one pixel into an arbitrarily bright spike."""
        return to_raw(np.clip(s, *self.clip), self.scale)

    @classmethod
    def from_raw(
        cls,
        maps: dict[str, np.ndarray],
        params: dict[str, np.ndarray] | None,
        scale: float,
        param_names: tuple[str, ...] = (),
    ) -> CosmoData:
        """Data from raw maps [n, N, N] and parameters [n, P] (or None), keyed by split."""
        xs = {s: to_model_space(maps[s], scale)[..., None] for s in SPLITS}  # one channel
        ys: dict[str, np.ndarray | None] = dict.fromkeys(SPLITS)
        if params is not None:
            ys.update(params)
            width = params["train"].shape[1]
            param_names = param_names or tuple(f"param{i}" for i in range(width))
        return cls(
            x_train=xs["train"],
            y_train=ys["train"],
            x_val=xs["val"],
            y_val=ys["val"],
            x_test=xs["test"],
            y_test=ys["test"],
            param_names=param_names if params is not None else (),
            scale=scale,
            clip=(float(xs["train"].min()), float(xs["train"].max())),
        )


def write_file(data: CosmoData, path: Path) -> None:
    """Raw maps [n, N, N] and parameters (if any) in the documented layout: ``.npz``, or
    HDF5 for an ``.h5``/``.hdf5`` path."""
    arrays: dict[str, Any] = {}
    for split in SPLITS:
        arrays[f"x_{split}"] = to_raw(getattr(data, f"x_{split}")[..., 0], data.scale)
        y = getattr(data, f"y_{split}")
        if y is not None:
            arrays[f"y_{split}"] = y
    if data.param_names:
        arrays["param_names"] = np.array(data.param_names, dtype=np.bytes_)
    datafiles.write_arrays(path, arrays)


def read_file(path: Path, map_size: int, scale: float) -> CosmoData:
    """The data set in a file of the documented layout (see the module doc)."""
    maps, params, names = read_maps(path, map_size)
    return CosmoData.from_raw(maps, params, scale, names)


def read_maps(
    path: Path, map_size: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, tuple[str, ...]]:
    """Raw maps [n, N, N] (float32) and parameters ([n, P] float32, or None) per split,
    and the parameters' names, of a file in the documented layout, checked: ValueError
    naming the array otherwise."""
    names = [f"{a}_{s}" for s in SPLITS for a in ("x", "y")] + ["param_names"]
    optional = [f"y_{s}" for s in SPLITS] + ["param_names"]
    raw = datafiles.read_arrays(path, names, "cosmogan", optional=optional)
    maps = {s: _maps(path, s, raw[f"x_{s}"], map_size) for s in SPLITS}
    absent = [f"y_{s}" for s in SPLITS if f"y_{s}" not in raw]
    if len(absent) == len(SPLITS):
        return maps, None, ()
    if absent:
        raise ValueError(
            f"{path}: y_* must be given for all splits or none; {absent[0]} is missing"
        )
    params = {s: _params(path, s, raw[f"y_{s}"], len(maps[s])) for s in SPLITS}
    if len({p.shape[1] for p in params.values()}) > 1:
        raise ValueError(f"{path}: y_train, y_val and y_test have different numbers of columns")
    width = params["train"].shape[1]
    if "param_names" not in raw:
        return maps, params, ()
    param_names = tuple(
        v.decode() if isinstance(v, bytes) else str(v) for v in raw["param_names"].ravel()
    )
    if len(param_names) != width:
        raise ValueError(f"{path}: param_names has {len(param_names)} names for {width} columns")
    return maps, params, param_names


def _maps(path: Path, split: str, x: np.ndarray, size: int) -> np.ndarray:
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (size, size) or len(x) == 0:
        raise ValueError(
            f"{path}: x_{split} has shape {x.shape}; expected (n, {size}, {size}) or "
            f"(n, {size}, {size}, 1) with map_size {size} (set the option map_size to "
            "the files' map size)"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{path}: x_{split} is not numeric ({x.dtype})")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: x_{split} contains NaN or infinite values")
    if x.min() < 0:
        raise ValueError(
            f"{path}: x_{split} has negative values (min {x.min():g}); the maps must be "
            "non-negative intensities (e.g. kappa - kappa_min), see the module doc"
        )
    return x


def _params(path: Path, split: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n or not np.issubdtype(y.dtype, np.number):
        raise ValueError(
            f"{path}: y_{split} must be numeric of shape ({n},) or ({n}, P) to match "
            f"x_{split}; got {y.shape} {y.dtype}"
        )
    return y.astype(np.float32)
