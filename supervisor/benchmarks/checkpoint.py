"""Epoch checkpoints of a trial: the format on disk and how ``fit`` finds its own.

A worker attaches a ``Checkpoint`` to the ``report`` it passes to ``Benchmark.fit``;
``checkpoint_of(report)`` gives it back to a ``fit`` that saves and resumes them
(``benchmarks_sci.keras_fit.fit_reporting`` is one).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from supervisor.benchmarks.base import EpochReport

log = logging.getLogger(__name__)

CHECKPOINT_STATE = "state.json"
CHECKPOINT_ARRAYS = "state.npz"
_EPOCH_PREFIX = "epoch-"


@dataclass
class Restored:
    """A checkpoint read back: the last epoch it holds, the metrics reported for each
    epoch up to it (``[{"epoch": 0.0, ...}, ...]``) and the saved arrays by name."""

    epoch: int
    history: list[dict[str, float]]
    arrays: dict[str, Any]


class Checkpoint:
    """One trial's epoch checkpoints, in ``directory`` (shared by every attempt of the
    trial: the driver keys it by the first trial of its retry chain).

    Each save is a new ``epoch-NNNNNN/`` written under a temporary name and renamed into
    place, then the older ones are removed: a kill at any point leaves a complete
    checkpoint (or none). What is saved is framework-neutral: named numpy arrays (for
    Keras, the model's and the optimizer's variables) and the per-epoch metrics.
    """

    def __init__(self, directory: str | Path, every: int, identity: str = "") -> None:
        self.directory = Path(directory)
        self.every = every
        # What the trial is (study, params, seed): a checkpoint of anything else found
        # here, e.g. in a run directory reused for a new study, is not restored.
        self.identity = identity
        self.resumed_from: int | None = None  # the epoch restored, once one was

    def due(self, epoch: int, epochs: int) -> bool:
        """Save after ``epoch`` (from 0)? Every ``every`` epochs, never after the last
        one: the trial is done then."""
        return self.every > 0 and (epoch + 1) % self.every == 0 and epoch + 1 < epochs

    def save(self, epoch: int, history: list[dict[str, float]], arrays: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{_EPOCH_PREFIX}{epoch:06d}"
        tmp = self.directory / f".tmp-{os.getpid()}-{final.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        state = {
            "epoch": epoch,
            "history": history,
            "arrays": sorted(arrays),
            "identity": self.identity,
        }
        try:
            with open(tmp / CHECKPOINT_ARRAYS, "wb") as f:
                save_npz(f, arrays)
                f.flush()
                os.fsync(f.fileno())
            with open(tmp / CHECKPOINT_STATE, "w") as f:
                f.write(json.dumps(state))
                f.flush()
                os.fsync(f.fileno())
        except BaseException:  # a full disk: the half-written copy would keep its space
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(final, ignore_errors=True)  # a re-run saving the same epoch again
        os.replace(tmp, final)
        for old in self._saved():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)

    def load(self) -> Restored | None:
        """The newest readable checkpoint, or None. A corrupt or partial one is skipped
        with a warning (the trial then restarts, or resumes from an older one)."""
        for path in sorted(self._saved(), reverse=True):
            try:
                restored = _read_checkpoint(path, self.identity)
            except Exception as exc:  # whatever a truncated file raises: never fatal
                log.warning(
                    "ignoring unreadable checkpoint %s: %s: %s", path, type(exc).__name__, exc
                )
                continue
            return restored
        return None

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _saved(self) -> list[Path]:
        try:
            return [p for p in self.directory.iterdir() if p.name.startswith(_EPOCH_PREFIX)]
        except OSError:
            return []


def save_npz(
    file: str | Path | IO[bytes], arrays: Mapping[str, Any], compress: bool = False
) -> None:
    """``numpy.savez`` (or ``savez_compressed``) of named arrays, refusing arrays of Python
    objects (they would be pickled). numpy < 2.2 has no ``allow_pickle`` there: it saved
    the keyword as one more array, named 'allow_pickle', so every checkpoint read back as
    damaged and every saved model had an array too many."""
    import numpy as np

    values: dict[str, Any] = {name: np.asarray(v) for name, v in arrays.items()}
    for name, value in values.items():
        if value.dtype.hasobject:
            raise ValueError(f"array {name!r} holds Python objects, which would be pickled")
    (np.savez_compressed if compress else np.savez)(file, **values)


def load_npz(file: str | Path) -> dict[str, Any]:
    """The arrays ``save_npz`` wrote (each read: its CRC checked), never a pickle. A file
    written before ``save_npz`` under numpy < 2.2 holds one more, 'allow_pickle' (a 0-d
    False): left out, or such a kept model loaded with an array too many (set_weights
    refused it), its checkpoint read back as damaged (the trial restarted at epoch 0)."""
    import numpy as np

    with np.load(file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    stray = arrays.get("allow_pickle")
    if stray is not None and stray.shape == () and stray.dtype == np.bool_ and not stray:
        del arrays["allow_pickle"]
    return arrays


def _read_checkpoint(path: Path, identity: str) -> Restored:
    state = json.loads((path / CHECKPOINT_STATE).read_text())
    if state.get("identity", "") != identity:
        raise ValueError("saved by another trial (study, parameters or seed differ)")
    epoch = state["epoch"]
    history = state["history"]
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(history, list):
        raise ValueError("malformed state")
    entries = [{str(k): float(v) for k, v in entry.items()} for entry in history]
    if [int(e.get("epoch", -1)) for e in entries] != list(range(epoch + 1)):
        raise ValueError(f"history does not cover epochs 0..{epoch}")
    arrays = load_npz(path / CHECKPOINT_ARRAYS)
    if sorted(arrays) != state["arrays"]:
        raise ValueError("arrays missing from the checkpoint")
    return Restored(epoch=epoch, history=entries, arrays=arrays)


def checkpoint_of(report: EpochReport) -> Checkpoint | None:
    """The checkpoint the worker attached to ``report``, if any."""
    found = getattr(report, "checkpoint", None)
    return found if isinstance(found, Checkpoint) else None
