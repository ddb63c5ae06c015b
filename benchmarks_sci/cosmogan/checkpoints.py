"""Epoch checkpoints of a CosmoGAN trial: both networks, both optimizers, the training
random stream.

The GAN trains in its own loop (``training``), so it cannot use ``keras_fit``'s. What a
resumed trial needs to continue as if it had never stopped: every variable of the two
networks (batch-norm statistics included), both Adam optimizers' slots and step counts,
and the numpy stream that draws batches, latent vectors and label flips. The stream's
state is a dict of 128-bit integers; it travels as JSON bytes in a uint8 array, since a
checkpoint holds arrays only (``supervisor.benchmarks.Checkpoint``: no pickles).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from benchmarks_sci.cosmogan.model import CosmoGAN
from supervisor.benchmarks import Checkpoint

log = logging.getLogger(__name__)

_RNG = "rng_state"


def _variables(gan: CosmoGAN) -> dict[str, Any]:
    """Every variable of the GAN by a stable name (its place in its group)."""
    groups = {
        "generator": gan.generator.weights,
        "discriminator": gan.discriminator.weights,
        "g_optimizer": gan.g_optimizer.variables,
        "d_optimizer": gan.d_optimizer.variables,
    }
    return {f"{group}_{i:05d}": v for group, vs in groups.items() for i, v in enumerate(vs)}


def save(gan: CosmoGAN, ckpt: Checkpoint, epoch: int, curve: list[dict[str, float]]) -> None:
    """Save the GAN after ``epoch``; a failure (a full disk) is a warning: the trial
    trains on without it."""
    import keras

    try:
        arrays = {k: keras.ops.convert_to_numpy(v) for k, v in _variables(gan).items()}
        state = json.dumps(gan.rng.bit_generator.state).encode()
        arrays[_RNG] = np.frombuffer(state, dtype=np.uint8)
        ckpt.save(epoch, list(curve), arrays)
    except Exception as exc:
        log.warning("checkpoint after epoch %d not saved: %s: %s", epoch, type(exc).__name__, exc)


def resume(gan: CosmoGAN, ckpt: Checkpoint, epochs: int, curve: list[dict[str, float]]) -> int:
    """Restore ``ckpt``'s newest checkpoint into ``gan``; the epoch to train next (0: none
    usable). Nothing is assigned unless every variable and the stream match."""
    restored = ckpt.load()
    if restored is None:
        return 0
    variables = _variables(gan)
    arrays = dict(restored.arrays)
    rng_state = _rng_state(arrays.pop(_RNG, None), gan)
    shapes = {k: tuple(v.shape) for k, v in variables.items()}
    saved = {k: tuple(a.shape) for k, a in arrays.items()}
    if restored.epoch >= epochs or shapes != saved or rng_state is None:
        why = "more epochs than the budget" if restored.epoch >= epochs else "another model"
        log.warning("ignoring checkpoint in %s (%s): restarting", ckpt.directory, why)
        return 0
    for name, variable in variables.items():
        variable.assign(arrays[name])
    gan.rng.bit_generator.state = rng_state
    ckpt.resumed_from = restored.epoch
    curve.extend(restored.history)
    return restored.epoch + 1


def _rng_state(raw: np.ndarray | None, gan: CosmoGAN) -> dict[str, Any] | None:
    """The saved stream's state, or None when it is missing or of another generator."""
    if raw is None:
        return None
    try:
        state = json.loads(raw.astype(np.uint8).tobytes().decode())
    except (UnicodeDecodeError, ValueError):
        return None
    kind = type(gan.rng.bit_generator).__name__
    return state if isinstance(state, dict) and state.get("bit_generator") == kind else None
