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
(two ReLU layers of 256, dropout, weight decay) chosen on the synthetic data. Adam
replaces the original SGD with a momentum schedule; its learning rate is 1e-4 because
each Adam step moves a unit's input by about ``learning_rate`` x its fan-in, and the
paper's inputs have 86 x 258 = 22,188 features (1e-3 trains erratically at 200 Hz; it
suits inputs binned to 50 Hz). ``optimizer: sgd`` with ``momentum`` and ``lr_decay``
gives the original's set-up.

Keras is imported inside ``build_model`` only: the driver imports this package without it.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "elu", "selu", "gelu", "silu", "leaky_relu", "tanh", "sigmoid")


@dataclass(frozen=True)
class HyperParams:
    """Every tunable of the decoder, with its default (see the module docstring)."""

    n_layers: int = 2  # hidden layers; 0: softmax regression
    units: int = 256  # units of the first hidden layer
    taper: float = 1.0  # each further hidden layer has taper x the previous one's units
    activation: str = "relu"
    dropout: float = 0.3  # after every hidden layer
    input_dropout: float = 0.1  # on the inputs (1 - the authors' input keep-probability)
    l2: float = 1e-5  # weight decay of every kernel
    max_norm: float = 0.0  # max L2 norm of each unit's incoming weights; 0: none
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    momentum: float = 0.0  # sgd and rmsprop only
    lr_decay: float = 0.0  # learning rate x (1 - lr_decay) after every epoch
    batch_size: int = 64


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HyperParams))
# name: (low, high, high is inclusive); ints are checked for being whole numbers too.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "n_layers": (0, 16, True),
    "units": (1, 100_000, True),
    "batch_size": (1, 1_000_000, True),
    "taper": (0.0, 1.0, True),
    "dropout": (0.0, 1.0, False),
    "input_dropout": (0.0, 1.0, False),
    "l2": (0.0, 1.0, True),
    "max_norm": (0.0, 1e6, True),
    "learning_rate": (0.0, 10.0, True),
    "momentum": (0.0, 1.0, False),
    "lr_decay": (0.0, 1.0, False),
}
_INTS = ("n_layers", "units", "batch_size")
_POSITIVE = ("taper", "learning_rate")  # 0 is in the range's closure but meaningless
_CHOICES = {"optimizer": OPTIMIZERS, "activation": ACTIVATIONS}


def resolve_params(params: Mapping[str, Any]) -> HyperParams:
    """Defaults overridden by ``params``, checked: names, types and ranges.

    Raises ValueError naming the offending parameter. A misspelled name is an error
    rather than ignored: it would silently train the default model.
    """
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name not in PARAM_NAMES:
            close = difflib.get_close_matches(name, PARAM_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown hyper-parameter {name!r} for the speech decoder{hint}; "
                f"known: {', '.join(PARAM_NAMES)}"
            )
        values[name] = _check(name, value)
    return HyperParams(**values)


def hidden_units(hp: HyperParams) -> list[int]:
    """Units of every hidden layer (at least 1 each)."""
    return [max(1, round(hp.units * hp.taper**k)) for k in range(hp.n_layers)]


def _check(name: str, value: Any) -> Any:
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            allowed = ", ".join(_CHOICES[name])
            raise ValueError(f"hyper-parameter {name!r} must be one of {allowed}; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"hyper-parameter {name!r} must be a number, got {value!r}")
    number = float(value)  # numpy scalars and YAML ints alike
    low, high, inclusive = _RANGES[name]
    in_range = low <= number <= high if inclusive else low <= number < high
    bracket = "]" if inclusive else ")"
    if name in _INTS:
        if not number.is_integer() or not in_range:
            raise ValueError(
                f"hyper-parameter {name!r} must be an integer in [{low}, {high}], got {value!r}"
            )
        return int(number)
    if not in_range or (name in _POSITIVE and number == 0):
        raise ValueError(
            f"hyper-parameter {name!r} must be in [{low}, {high}{bracket}"
            f"{' and > 0' if name in _POSITIVE else ''}, got {value!r}"
        )
    return number


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
    stack.append(layers.Dense(n_classes, activation="softmax", name="out", **dense))
    model = keras.Sequential(stack, name=f"speech_mlp{hp.n_layers}")
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
