"""The Keras optimizer a model's ``optimizer`` hyper-parameter names.

Keras is imported inside ``build_optimizer`` only: the driver imports the models'
packages without it.
"""

from __future__ import annotations

from typing import Any

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def build_optimizer(name: str, learning_rate: float, momentum: float = 0.0) -> Any:
    """A fresh Keras optimizer; ``momentum`` is for sgd and rmsprop (Adam has none)."""
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, momentum=momentum)
    return keras.optimizers.Adam(learning_rate)
