"""The seed's extreme-weather ConvNets (Liu et al. 2016) in Keras 3, backend-agnostic.

One ``Architecture`` row per task of the seed's table (conv, pool, conv, pool, FC, FC 2);
every number of a row that is worth searching is a hyper-parameter whose default is the
seed's value. Keras is imported inside ``build_model`` only: the driver imports this
module's package without TensorFlow.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """A row of the seed's table: conv k x k - f1, pool, conv k x k - f2, pool, FC, FC 2."""

    input_shape: tuple[int, int, int]
    filters1: int
    filters2: int
    kernel_size: int
    pool1: int
    pool2: int
    dense_units: int


ARCHITECTURES: dict[str, Architecture] = {
    "tc": Architecture((32, 32, 8), 8, 16, 5, 2, 2, 50),
    "ar": Architecture((148, 224, 2), 8, 16, 12, 3, 2, 200),
    "wf": Architecture((27, 60, 3), 16, 16, 5, 2, 2, 400),
}
OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "elu", "selu", "gelu", "silu", "leaky_relu", "tanh", "sigmoid")


@dataclass(frozen=True)
class HyperParams:
    """Every tunable of the ConvNet. Defaults: the seed's TC row and training set-up;
    ``resolve_params`` takes the layer sizes of other tasks from their row."""

    filters1: int = 8
    filters2: int = 16
    kernel_size: int = 5
    dense_units: int = 50
    dropout: float = 0.0
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0  # sgd and rmsprop only; adam ignores it
    batch_size: int = 128
    activation: str = "relu"
    l2: float = 0.0


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HyperParams))
_INTS = ("filters1", "filters2", "kernel_size", "dense_units", "batch_size")
# name: (low, high, high is inclusive)
_FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {
    "dropout": (0.0, 1.0, False),
    "learning_rate": (0.0, 10.0, True),
    "momentum": (0.0, 1.0, False),
    "l2": (0.0, 1.0, True),
}
_CHOICES = {"optimizer": OPTIMIZERS, "activation": ACTIVATIONS}


def resolve_params(params: Mapping[str, Any], task: str = "tc") -> HyperParams:
    """Defaults of ``task`` overridden by ``params``, checked: names, types and ranges.

    Raises ValueError naming the offending parameter. A misspelled name is an error
    rather than ignored: it would silently train the default model.
    """
    arch = ARCHITECTURES[task]
    values: dict[str, Any] = {
        "filters1": arch.filters1,
        "filters2": arch.filters2,
        "kernel_size": arch.kernel_size,
        "dense_units": arch.dense_units,
    }
    for name, value in params.items():
        if name not in PARAM_NAMES:
            close = difflib.get_close_matches(name, PARAM_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown hyper-parameter {name!r} for the weather ConvNet{hint}; "
                f"known: {', '.join(PARAM_NAMES)}"
            )
        values[name] = _check(name, value)
    return HyperParams(**values)


def _check(name: str, value: Any) -> Any:
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            allowed = ", ".join(_CHOICES[name])
            raise ValueError(f"hyper-parameter {name!r} must be one of {allowed}; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"hyper-parameter {name!r} must be a number, got {value!r}")
    number = float(value)  # numpy scalars and YAML ints alike
    if name in _INTS:
        if not number.is_integer() or number < 1:
            raise ValueError(f"hyper-parameter {name!r} must be a positive integer, got {value!r}")
        return int(number)
    low, high, inclusive = _FLOAT_RANGES[name]
    ok = low <= number <= high if inclusive else low <= number < high
    if not ok or (name == "learning_rate" and number == 0):
        bracket = "]" if inclusive else ")"
        raise ValueError(
            f"hyper-parameter {name!r} must be in [{low}, {high}{bracket}, got {value!r}"
        )
    return number


def build_model(params: Mapping[str, Any], seed: int, task: str = "tc") -> Any:
    """A compiled ``keras.Model`` (softmax over 2 classes) for one trial's parameters."""
    return build_convnet(resolve_params(params, task), seed, task)


def build_convnet(hp: HyperParams, seed: int, task: str = "tc") -> Any:
    """A compiled ``keras.Model`` (softmax over 2 classes) for checked parameters."""
    arch = ARCHITECTURES[task]
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)  # weights, dropout masks and shuffling
    reg = keras.regularizers.L2(hp.l2) if hp.l2 > 0 else None
    kernel = hp.kernel_size
    conv = {"padding": "same", "activation": hp.activation, "kernel_regularizer": reg}
    model = keras.Sequential(
        [
            keras.Input(shape=arch.input_shape),
            layers.Conv2D(hp.filters1, kernel, name="conv1", **conv),
            layers.MaxPooling2D(arch.pool1, name="pool1"),
            layers.Conv2D(hp.filters2, kernel, name="conv2", **conv),
            layers.MaxPooling2D(arch.pool2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dropout(hp.dropout, name="dropout1"),
            layers.Dense(
                hp.dense_units,
                activation=hp.activation,
                kernel_regularizer=reg,
                name="fc",
            ),
            layers.Dropout(hp.dropout, name="dropout2"),
            layers.Dense(2, activation="softmax", name="out"),
        ],
        name=f"weather_{task}_convnet",
    )
    model.compile(
        optimizer=_optimizer(keras, hp),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _optimizer(keras: Any, hp: HyperParams) -> Any:
    if hp.optimizer == "sgd":
        return keras.optimizers.SGD(hp.learning_rate, momentum=hp.momentum)
    if hp.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(hp.learning_rate, momentum=hp.momentum)
    return keras.optimizers.Adam(hp.learning_rate)
