"""``Benchmark.fit`` for a compiled Keras model: train, score and report every epoch.

The benchmark scores validation itself (``validate``) rather than through Keras, so that
per-epoch and final metrics are the same quantities (e.g. the loss without the L2
penalty, or read identity, which Keras cannot compute). Keras is imported inside
``fit_reporting`` only: the driver imports the benchmarks without it.

Epoch checkpoints (``base.Checkpoint``): given one, ``fit_reporting`` saves the model's
and the optimizer's variables every N epochs and, when one is there already (the trial
is a re-run after an infrastructure failure), restores them, reports the restored epochs
again (so the re-run's learning curve is whole) and trains on from the next epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from supervisor.benchmarks import DIVERGED_AFTER_STEPS, Checkpoint, EpochReport, checkpoint_of

log = logging.getLogger(__name__)


@dataclass
class FitOutcome:
    """What ``fit_reporting`` leaves for the final metrics."""

    val: dict[str, float]  # validation scores after the last epoch (or of the initial weights)
    diverged: bool  # a non-finite training loss was seen
    finite_steps: int = 0  # training steps with a finite loss (before it diverged)


def fit_reporting(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int,
    epochs: int,
    report: EpochReport,
    validate: Callable[[Any, bool], dict[str, float]],
    val_reported: tuple[str, ...],
    logged: tuple[str, ...] = ("loss",),
    learning_rate: Callable[[int], float] | None = None,
    checkpoint: Checkpoint | None = None,
) -> FitOutcome:
    """Train ``model`` on shuffled ``x``, ``y`` for up to ``epochs`` epochs.

    After every epoch, ``validate(model, diverged)`` scores the model; ``report`` gets the
    epoch's Keras averages ``logged`` and the scores ``val_reported`` as ``val_<name>``,
    and stops training by returning True. ``learning_rate(epoch)``, if given, sets the
    optimizer's rate at the start of every epoch. With no epoch trained, the initial
    weights are scored. ``checkpoint`` (default: the one attached to ``report``) saves
    and resumes epoch checkpoints, see the module's doc.
    """
    import keras

    outcome = FitOutcome(val={}, diverged=False)
    ckpt = checkpoint if checkpoint is not None else checkpoint_of(report)
    curve: list[dict[str, float]] = []  # each epoch's reported metrics, kept in checkpoints
    initial_epoch = 0
    stopped = False
    rng: dict[str, Any] = {}  # numpy's stream at the checkpoint, set when training resumes
    if ckpt is not None and epochs > 0:
        initial_epoch = _resume(model, ckpt, epochs, curve, rng)
        for entry in curve:  # the re-run trial reports its restored epochs too
            if report(int(entry["epoch"]), {k: v for k, v in entry.items() if k != "epoch"}):
                stopped = True
                break

    class Reporter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            if rng:  # here, not before fit: fit draws a permutation it never trains on
                _set_numpy_rng(rng.pop(_NUMPY_KEYS), rng.pop(_NUMPY_REST))
            if learning_rate is not None:
                self.model.optimizer.learning_rate = learning_rate(epoch)

        def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            # A diverged trial stops at once (silently, unlike TerminateOnNaN); its NaN
            # metrics then mark it as failed.
            if logs and not math.isfinite(float(logs.get("loss", 0.0))):
                outcome.diverged = True
                self.model.stop_training = True
            elif not outcome.diverged:
                outcome.finite_steps += 1

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            outcome.val.update(validate(self.model, outcome.diverged))
            logs = logs or {}
            metrics = {name: float(logs[name]) for name in logged}
            metrics.update({f"val_{name}": outcome.val[name] for name in val_reported})
            if outcome.diverged:  # after finite steps: the configuration, not the data
                metrics[DIVERGED_AFTER_STEPS] = float(outcome.finite_steps)
            curve.append({"epoch": float(epoch), **metrics})
            if report(epoch, metrics):
                self.model.stop_training = True
            elif ckpt is not None and not outcome.diverged and ckpt.due(epoch, epochs):
                _save(self.model, ckpt, epoch, curve)

    if initial_epoch < epochs and not stopped:
        model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            shuffle=True,
            callbacks=[Reporter()],
            verbose=0,
        )
    if not outcome.val:  # no epoch trained: score the initial weights
        outcome.val.update(validate(model, outcome.diverged))
    return outcome


def _variables(model: Any) -> dict[str, Any]:
    """The model's and its optimizer's variables by a stable name (their order). The
    model's ``variables``, not its ``weights``: they include the dropout layers' seed
    states, without which a resumed trial draws the dropout masks of epoch 0 again."""
    named = {f"model_{i:05d}": v for i, v in enumerate(model.variables)}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        if not optimizer.built:  # before the first fit: its slots must exist to be restored
            optimizer.build(model.trainable_variables)
        named.update({f"optimizer_{i:05d}": v for i, v in enumerate(optimizer.variables)})
    return named


# numpy's global stream: Keras shuffles with it on JAX (``np.random.permutation`` per
# epoch; TensorFlow's tf.data shuffle replays by itself). Without it, a trial resumed on
# JAX trains on other batches than an unbroken one.
_NUMPY_KEYS, _NUMPY_REST = "numpy_rng_keys", "numpy_rng_rest"


def _numpy_rng() -> dict[str, np.ndarray]:
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        _NUMPY_KEYS: np.asarray(keys, np.uint32),
        _NUMPY_REST: np.array([pos, has_gauss, cached], np.float64),
    }


def _set_numpy_rng(keys: np.ndarray, rest: np.ndarray) -> None:
    np.random.set_state(("MT19937", keys, int(rest[0]), int(rest[1]), float(rest[2])))


def _save(model: Any, ckpt: Checkpoint, epoch: int, curve: list[dict[str, float]]) -> None:
    import keras

    try:
        arrays = {k: keras.ops.convert_to_numpy(v) for k, v in _variables(model).items()}
        arrays.update(_numpy_rng())
        ckpt.save(epoch, list(curve), arrays)
    except Exception as exc:  # e.g. a full disk: the trial trains on without it
        log.warning("checkpoint after epoch %d not saved: %s: %s", epoch, type(exc).__name__, exc)


def _resume(
    model: Any, ckpt: Checkpoint, epochs: int, curve: list[dict[str, float]], rng: dict[str, Any]
) -> int:
    """Restore ``ckpt``'s newest checkpoint into ``model`` (numpy's stream into ``rng``,
    where saved); the epoch to train next (0: none usable). Nothing is assigned unless
    every variable matches."""
    restored = ckpt.load()
    if restored is None:
        return 0
    variables = _variables(model)
    arrays = dict(restored.arrays)
    saved_rng = {k: arrays.pop(k) for k in (_NUMPY_KEYS, _NUMPY_REST) if k in arrays}
    shapes = {k: tuple(v.shape) for k, v in variables.items()}
    saved = {k: tuple(a.shape) for k, a in arrays.items()}
    if restored.epoch >= epochs or shapes != saved:
        why = "more epochs than the budget" if restored.epoch >= epochs else "another model"
        log.warning("ignoring checkpoint in %s (%s): restarting", ckpt.directory, why)
        return 0
    for name, variable in variables.items():
        variable.assign(arrays[name])
    if len(saved_rng) == 2:  # absent from checkpoints of older versions
        rng.update(saved_rng)
    ckpt.resumed_from = restored.epoch
    curve.extend(restored.history)
    return restored.epoch + 1
