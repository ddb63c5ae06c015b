"""The fully connected feed-forward decoder of Livezey, Bouchard & Chang (2019), Keras 3.

Input: one trial's high-gamma [electrodes x time], flattened and mean-centred. Then
input dropout, ``n_layers`` dense hidden layers (layer k has ``units * taper**k`` units)
with dropout, and a 57-way softmax. Weight decay (L2) and an optional max-norm
constraint on every weight vector regularise it, as in the authors' pylearn2 set-up,
where every one of these numbers was a Spearmint hyper-parameter. ``n_layers: 0`` is
multinomial logistic (softmax) regression, the paper's linear baseline.

Defaults (``HyperParams``): the authors' published search space (BouchardLab/pylearn2,
``scripts/ecog/config.json``) searched 0-3 hidden layers of 3-1000 units, ReLU / tanh /
sigmoid units, input keep-probabilities 0.3-1, weight decay 1e-7-1, learning rates
1e-3-1e-1 with momentum, batch sizes 15-256. The paper's per-subject best values are
not reproduced here (not available offline); the defaults are a point of that space
(one ReLU layer of 512, dropout 0.5 with input dropout 0.3, weight decay 1e-4) chosen
on the synthetic data at 50 Hz, where they beat softmax regression by 4-8 points (see
``synthetic._LEVELS``) while two layers of 256 fell well short of it. Adam
replaces the original SGD with a momentum schedule, at 1e-3: each Adam step moves a
unit's input by about ``learning_rate`` x its fan-in, so at the paper's 200 Hz
(86 x 258 = 22,188 features) 1e-3 trains erratically and 1e-4 suits better.
``optimizer: sgd`` with ``momentum`` and ``lr_decay`` gives the original's set-up.

Keras is imported inside ``build_model`` only: the driver imports this package without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks_sci.hyperparams import Choice, Int, ParamTable, Real
from benchmarks_sci.optimizers import OPTIMIZERS, build_optimizer

ACTIVATIONS = ("relu", "elu", "selu", "gelu", "silu", "leaky_relu", "tanh", "sigmoid")


@dataclass(frozen=True)
class HyperParams:
    """Every tunable of the decoder, with its default (see the module docstring)."""

    n_layers: int = 1  # hidden layers; 0: softmax regression
    units: int = 512  # units of the first hidden layer
    taper: float = 1.0  # each further hidden layer has taper x the previous one's units
    activation: str = "relu"
    dropout: float = 0.5  # after every hidden layer
    input_dropout: float = 0.3  # on the inputs (1 - the authors' input keep-probability)
    l2: float = 1e-4  # weight decay of every kernel
    max_norm: float = 0.0  # max L2 norm of each unit's incoming weights; 0: none
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop only
    lr_decay: float = 0.0  # learning rate x (1 - lr_decay) after every epoch
    batch_size: int = 64


PARAMS = ParamTable(
    "the speech decoder",
    {
        "n_layers": Int(0, 16),
        "units": Int(1, 100_000),
        "taper": Real(0.0, 1.0, low_open=True),
        "activation": Choice(ACTIVATIONS),
        "dropout": Real(0.0, 1.0, high_open=True),
        "input_dropout": Real(0.0, 1.0, high_open=True),
        "l2": Real(0.0, 1.0),
        "max_norm": Real(0.0, 1e6),
        "optimizer": Choice(OPTIMIZERS),
        "learning_rate": Real(0.0, 10.0, low_open=True),
        "momentum": Real(0.0, 1.0, high_open=True),
        "lr_decay": Real(0.0, 1.0, high_open=True),
        "batch_size": Int(1, 1_000_000),
    },
)
PARAM_NAMES: tuple[str, ...] = PARAMS.names


def resolve_params(params: Mapping[str, Any]) -> HyperParams:
    """Defaults overridden by ``params``, checked: names, types and ranges (ValueError
    naming the offending parameter, see ``hyperparams``)."""
    return HyperParams(**PARAMS.resolve(params))


def hidden_units(hp: HyperParams) -> list[int]:
    """Units of every hidden layer (at least 1 each)."""
    return [max(1, round(hp.units * hp.taper**k)) for k in range(hp.n_layers)]


def build_model(params: Mapping[str, Any], seed: int, n_inputs: int, n_classes: int) -> Any:
    """A compiled ``keras.Model``: ``n_inputs`` features -> ``n_classes`` probabilities."""
    hp = resolve_params(params)
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)  # weights, dropout masks and shuffling
    dense = {
        "kernel_regularizer": keras.regularizers.L2(hp.l2) if hp.l2 > 0 else None,
        "kernel_constraint": keras.constraints.MaxNorm(hp.max_norm) if hp.max_norm > 0 else None,
    }
    stack: list[Any] = [
        keras.Input(shape=(n_inputs,)),
        layers.Dropout(hp.input_dropout, name="input_dropout"),
    ]
    for k, units in enumerate(hidden_units(hp)):
        stack.append(layers.Dense(units, activation=hp.activation, name=f"hidden{k}", **dense))
        stack.append(layers.Dropout(hp.dropout, name=f"dropout{k}"))
    # float32 probabilities under a mixed policy: bfloat16 ones tie in the scored
    # argmax and top-5 ranks.
    out = layers.Dense(n_classes, activation="softmax", dtype="float32", name="out", **dense)
    stack.append(out)
    model = keras.Sequential(stack, name=f"speech_mlp{hp.n_layers}")
    model.compile(
        optimizer=build_optimizer(hp.optimizer, hp.learning_rate, hp.momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
