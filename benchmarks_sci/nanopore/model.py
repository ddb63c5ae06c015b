"""Chiron's basecaller (Teng et al. 2018) in Keras 3, backend-agnostic.

Signal [n, L] -> residual conv blocks -> stacked bidirectional LSTMs -> 5 logits per step
(A, C, G, T, blank), trained with CTC. Defaults are Chiron's DNA model (``dna_model1``
in its cnn.py: 3 residual blocks of 256 channels, kernel 3, no striding; rnn 3 x BiLSTM(100);
Adam at 1e-3, batch 200 in chiron_train.py). ``stride`` > 1 downsamples in the first
block, as Bonito does (stride 5), which divides the LSTMs' cost; CTC then needs at least
as many steps as bases plus repeated neighbours, which ``check_stride`` enforces.

A residual block (Chiron's ``residual_layer``): a 1x1 conv shortcut (batch-normalised in
the first block) added to 1x1 -> k -> 1x1 convs with batch norm (ReLU after the first two),
then ReLU.

Mixed precision: on the JAX backend the cuDNN LSTM rejects bfloat16 ("Unknown output
type bfloat16"), so under a mixed policy (``keras.mixed_precision.set_global_policy``)
the LSTM layers get a float32 policy of their own, and so does the output layer (CTC
wants float32 logits); the convolutions still run in the policy's compute dtype.

Keras is imported inside the functions only: the driver imports this package without it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks_sci.hyperparams import Choice, Int, ParamTable, Real
from benchmarks_sci.nanopore.synthetic import BASES, BLANK
from benchmarks_sci.optimizers import OPTIMIZERS, build_optimizer

N_CLASSES = len(BASES) + 1  # A, C, G, T and the blank


@dataclass(frozen=True)
class HyperParams:
    """Every tunable of the basecaller; defaults are Chiron's."""

    conv_blocks: int = 3
    conv_filters: int = 256
    kernel_size: int = 3
    stride: int = 1
    lstm_layers: int = 3
    lstm_units: int = 100
    dropout: float = 0.0  # after the conv stack and after every BiLSTM
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0  # sgd and rmsprop only; adam ignores it
    batch_size: int = 200


PARAMS = ParamTable(
    "the nanopore basecaller",
    {
        "conv_blocks": Int(0),
        "conv_filters": Int(1),
        "kernel_size": Int(1),
        "stride": Int(1),
        "lstm_layers": Int(0),
        "lstm_units": Int(1),
        "dropout": Real(0.0, 1.0, high_open=True),
        "learning_rate": Real(0.0, 10.0, low_open=True),
        "optimizer": Choice(OPTIMIZERS),
        "momentum": Real(0.0, 1.0, high_open=True),
        "batch_size": Int(1),
    },
)
PARAM_NAMES: tuple[str, ...] = PARAMS.names


def resolve_params(params: Mapping[str, Any]) -> HyperParams:
    """Chiron's defaults overridden by ``params``, checked: names, types and ranges
    (ValueError naming the offending parameter, see ``hyperparams``)."""
    hp = HyperParams(**PARAMS.resolve(params))
    if hp.stride > 1 and hp.conv_blocks == 0:
        raise ValueError(f"hyper-parameter 'stride' {hp.stride} needs conv_blocks >= 1")
    return hp


def output_steps(segment_length: int, stride: int) -> int:
    """Time steps the model emits for a segment (``padding="same"`` striding)."""
    return -(-segment_length // stride)


def ctc_steps_needed(labels: np.ndarray) -> np.ndarray:
    """The fewest time steps CTC can align each row of -1-padded labels with: one per
    base and a blank between repeated bases."""
    repeats = np.sum((labels[:, 1:] == labels[:, :-1]) & (labels[:, 1:] >= 0), axis=1)
    return np.asarray(np.sum(labels >= 0, axis=1) + repeats)


def check_stride(hp: HyperParams, segment_length: int, labels: np.ndarray) -> None:
    """CTC needs a step per base plus a blank between repeated bases: fail clearly when
    ``stride`` leaves too few steps for the longest segment's labels."""
    steps = output_steps(segment_length, hp.stride)
    needed = int(np.max(ctc_steps_needed(labels), initial=0))
    if needed > steps:
        raise ValueError(
            f"hyper-parameter 'stride' {hp.stride} leaves {steps} time steps per segment, "
            f"but a segment's labels need {needed}; use a smaller stride"
        )


def ctc_loss(y_true: Any, y_pred: Any) -> Any:
    """CTC loss per segment: labels [n, width] (0..3, -1-padded), logits [n, T, 5] with
    the blank last. ``keras.losses.CTC`` cannot be used: it takes class 0 as the blank
    and as padding, and A is 0 here."""
    import keras
    from keras import ops

    labels = ops.cast(y_true, "int32")
    if keras.backend.backend() == "tensorflow":
        return _tf_ctc_loss(labels, y_pred)
    label_length = ops.sum(ops.cast(labels >= 0, "int32"), axis=1)
    batch, steps = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    logit_length = ops.full((batch,), steps, dtype="int32")
    # Padding past each label_length is ignored; 0 keeps one-hot lookups in range.
    return ops.ctc_loss(
        ops.maximum(labels, 0), y_pred, label_length, logit_length, mask_index=BLANK
    )


def _tf_ctc_loss(labels: Any, logits: Any) -> Any:
    """TensorFlow's C++ CTC kernel, which takes sparse labels. ``keras.ops.ctc_loss``
    passes dense ones, which TF computes with a scan of small ops instead: 9x slower
    (1.6 s against 0.17 s for loss and gradient of 50 segments x 134 steps, measured)."""
    import tensorflow as tf

    index = tf.where(labels >= 0)
    sparse = tf.SparseTensor(index, tf.gather_nd(labels, index), tf.shape(labels, tf.int64))
    shape = tf.shape(logits)
    return tf.nn.ctc_loss(
        sparse,
        tf.cast(logits, tf.float32),
        None,
        tf.fill(shape[:1], shape[1]),
        logits_time_major=False,
        blank_index=BLANK,
    )


@functools.cache
def scoring_ctc_loss() -> Callable[[np.ndarray, np.ndarray], Any]:
    """``ctc_loss`` for scoring predictions outside training: jitted on JAX, whose
    eager scan takes seconds per batch; TensorFlow's eager kernel is fast as it is."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(ctc_loss)
    return ctc_loss


def build_model(params: Mapping[str, Any], seed: int) -> Any:
    """A compiled ``keras.Model``: signal [n, L] -> logits [n, T, 5], for any L."""
    hp = resolve_params(params)
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)  # weights, dropout masks and shuffling
    # Under a mixed policy, keep the LSTMs (cuDNN on JAX has no bfloat16) and the
    # logits (CTC) in float32; None means the global policy.
    mixed = keras.config.dtype_policy().compute_dtype != "float32"
    float32 = "float32" if mixed else None

    signal = keras.Input(shape=(None,), name="signal")
    x = layers.Reshape((-1, 1), name="channel")(signal)
    for i in range(hp.conv_blocks):
        x = _residual_block(layers, x, hp, i)
    x = layers.Dropout(hp.dropout, name="conv_dropout")(x)
    for i in range(hp.lstm_layers):
        lstm = layers.LSTM(hp.lstm_units, return_sequences=True, dtype=float32)
        x = layers.Bidirectional(lstm, dtype=float32, name=f"bilstm{i + 1}")(x)
        x = layers.Dropout(hp.dropout, name=f"bilstm{i + 1}_dropout")(x)
    logits = layers.Dense(N_CLASSES, dtype="float32", name="logits")(x)
    model = keras.Model(signal, logits, name="chiron_basecaller")
    # XLA cannot compile TensorFlow's sparse CTC kernel (see _tf_ctc_loss); JAX jits.
    jit = keras.backend.backend() != "tensorflow"
    optimizer = build_optimizer(hp.optimizer, hp.learning_rate, hp.momentum)
    model.compile(optimizer=optimizer, loss=ctc_loss, jit_compile=jit)
    return model


def _residual_block(layers: Any, x: Any, hp: HyperParams, i: int) -> Any:
    name, stride = f"res{i + 1}", hp.stride if i == 0 else 1

    def conv(y: Any, kernel: int, strides: int, part: str) -> Any:
        return layers.Conv1D(
            hp.conv_filters,
            kernel,
            strides=strides,
            padding="same",
            use_bias=False,
            name=f"{name}_{part}",
        )(y)

    def bn(y: Any, part: str, relu: bool) -> Any:
        y = layers.BatchNormalization(name=f"{name}_{part}_bn")(y)
        return layers.Activation("relu", name=f"{name}_{part}_relu")(y) if relu else y

    shortcut = conv(x, 1, stride, "shortcut")
    if i == 0:
        shortcut = bn(shortcut, "shortcut", relu=False)
    y = bn(conv(x, 1, 1, "a"), "a", relu=True)
    y = bn(conv(y, hp.kernel_size, stride, "b"), "b", relu=True)
    y = bn(conv(y, 1, 1, "c"), "c", relu=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)
