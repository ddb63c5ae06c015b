"""``Benchmark.fit`` for a compiled Keras model: train, score and report every epoch.

The benchmark scores validation itself (``validate``) rather than through Keras, so that
per-epoch and final metrics are the same quantities (e.g. the loss without the L2
penalty, or read identity, which Keras cannot compute). Keras is imported inside
``fit_reporting`` only: the driver imports the benchmarks without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks_sci.base import EpochReport


@dataclass
class FitOutcome:
    """What ``fit_reporting`` leaves for the final metrics."""

    val: dict[str, float]  # validation scores after the last epoch (or of the initial weights)
    diverged: bool  # a non-finite training loss was seen


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
) -> FitOutcome:
    """Train ``model`` on shuffled ``x``, ``y`` for up to ``epochs`` epochs.

    After every epoch, ``validate(model, diverged)`` scores the model; ``report`` gets the
    epoch's Keras averages ``logged`` and the scores ``val_reported`` as ``val_<name>``,
    and stops training by returning True. ``learning_rate(epoch)``, if given, sets the
    optimizer's rate at the start of every epoch. With no epoch trained, the initial
    weights are scored.
    """
    import keras

    outcome = FitOutcome(val={}, diverged=False)

    class Reporter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            if learning_rate is not None:
                self.model.optimizer.learning_rate = learning_rate(epoch)

        def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            # A diverged trial stops at once (silently, unlike TerminateOnNaN); its NaN
            # metrics then mark it as failed.
            if logs and not math.isfinite(float(logs.get("loss", 0.0))):
                outcome.diverged = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            outcome.val.update(validate(self.model, outcome.diverged))
            logs = logs or {}
            metrics = {name: float(logs[name]) for name in logged}
            metrics.update({f"val_{name}": outcome.val[name] for name in val_reported})
            if report(epoch, metrics):
                self.model.stop_training = True

    if epochs > 0:
        model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            callbacks=[Reporter()],
            verbose=0,
        )
    if not outcome.val:  # no epoch trained: score the initial weights
        outcome.val.update(validate(model, outcome.diverged))
    return outcome
