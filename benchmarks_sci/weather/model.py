"""The seed's extreme-weather ConvNets (Liu et al. 2016) in Keras 3, backend-agnostic.

One ``Architecture`` row per task of the seed's table (conv, pool, conv, pool, FC, FC 2);
every number of a row that is worth searching is a hyper-parameter whose default is the
seed's value. Keras is imported inside ``build_model`` only: the driver imports this
module's package without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks_sci.hyperparams import Choice, Int, ParamTable, Real
from benchmarks_sci.optimizers import OPTIMIZERS, build_optimizer


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


PARAMS = ParamTable(
    "the weather ConvNet",
    {
        "filters1": Int(1),
        "filters2": Int(1),
        "kernel_size": Int(1),
        "dense_units": Int(1),
        "dropout": Real(0.0, 1.0, high_open=True),
        "learning_rate": Real(0.0, 10.0, low_open=True),
        "optimizer": Choice(OPTIMIZERS),
        "momentum": Real(0.0, 1.0, high_open=True),
        "batch_size": Int(1),
        "activation": Choice(ACTIVATIONS),
        "l2": Real(0.0, 1.0),
    },
)
PARAM_NAMES: tuple[str, ...] = PARAMS.names


def resolve_params(params: Mapping[str, Any], task: str = "tc") -> HyperParams:
    """Defaults of ``task`` overridden by ``params``, checked: names, types and ranges
    (ValueError naming the offending parameter, see ``hyperparams``)."""
    arch = ARCHITECTURES[task]
    values: dict[str, Any] = {
        "filters1": arch.filters1,
        "filters2": arch.filters2,
        "kernel_size": arch.kernel_size,
        "dense_units": arch.dense_units,
    }
    values.update(PARAMS.resolve(params))
    return HyperParams(**values)


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
            # float32 probabilities under a mixed policy: in bfloat16 (8 bits) most of
            # them tie, which skews the scored AUC, loss and argmax.
            layers.Dense(2, activation="softmax", dtype="float32", name="out"),
        ],
        name=f"weather_{task}_convnet",
    )
    model.compile(
        optimizer=build_optimizer(hp.optimizer, hp.learning_rate, hp.momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
