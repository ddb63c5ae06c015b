"""The real-data files of the benchmarks: named arrays in an ``.npz``, or datasets at the
root of an ``.h5``/``.hdf5`` file (HDF5 needs h5py, imported only for such a file).

Each benchmark documents which arrays its files hold and checks their contents; this
module reads and writes them and checks what every layout needs: the file exists, its
suffix is known, h5py is there for HDF5, and no required array is missing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from supervisor.benchmarks import Option, OptionError

SUFFIXES = (".npz", ".h5", ".hdf5")
_HDF5 = (".h5", ".hdf5")


@dataclass(frozen=True)
class DataPathOption(Option):
    """The ``data_path`` option: empty (synthetic data) or a file of a known suffix,
    refused when the options are validated rather than when a worker loads the data.
    Its default should be ""."""

    def check(self, key: str, value: Any) -> Any:
        value = super().check(key, value)
        if value and Path(value).suffix.lower() not in SUFFIXES:
            raise OptionError(key, f"expected a {'/'.join(SUFFIXES)} file, got {value!r}")
        return value


def h5py_module(path: Path) -> Any:
    """The h5py module, or an ImportError saying how to do without it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(
            f"{path} is HDF5, which needs h5py (not installed): pip install h5py, "
            "or use an .npz file with the same array names"
        ) from None
    return h5py


def check_file(path: Path, benchmark: str) -> str:
    """The lower-case suffix of an existing data file of ``benchmark``; FileNotFoundError
    or ValueError otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"{benchmark} data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: expected a {'/'.join(SUFFIXES)} file")
    return suffix


def read_arrays(
    path: Path,
    names: Sequence[str],
    benchmark: str,
    optional: Collection[str] = (),
    expected: str = "",
) -> dict[str, np.ndarray]:
    """The arrays ``names`` that the file holds, read in full (others are not read).
    ValueError naming every missing one that is not ``optional``; ``expected`` says
    what a file must hold (default: the required names)."""
    suffix = check_file(path, benchmark)
    if suffix in _HDF5:
        with h5py_module(path).File(path, "r") as f:
            raw = {k: np.asarray(f[k]) for k in names if k in f}
    else:
        with np.load(path) as f:
            raw = {k: np.asarray(f[k]) for k in names if k in f}
    required = [k for k in names if k not in optional]
    missing = [k for k in required if k not in raw]
    if missing:
        listed = ", ".join(repr(k) for k in missing)
        raise ValueError(
            f"{path}: missing array {listed}; expected {expected or ', '.join(required)}"
        )
    return raw


def npz_shape(f: Any, name: str) -> tuple[int, ...]:
    """Shape of array ``name`` of an open .npz (``np.load``) from its header, without
    reading it."""
    fmt = np.lib.format
    with f.zip.open(f"{name}.npy") as member:
        version = fmt.read_magic(member)
        if version == (1, 0):
            return tuple(fmt.read_array_header_1_0(member)[0])
        if version == (2, 0):
            return tuple(fmt.read_array_header_2_0(member)[0])
    return tuple(f[name].shape)  # a newer format: read it


def write_arrays(path: Path, arrays: Mapping[str, Any]) -> None:
    """``arrays`` to ``path``: .npz, or HDF5 for .h5/.hdf5 (needs h5py)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with path.open("wb") as f:  # a file object: np.savez adds no second ".npz"
            np.savez(f, **arrays)
    elif suffix in _HDF5:
        with h5py_module(path).File(path, "w") as f:
            for name, value in arrays.items():
                f[name] = value
    else:
        raise ValueError(f"{path}: expected a {'/'.join(SUFFIXES)} file name")
