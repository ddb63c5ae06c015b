"""The CosmoGAN DCGAN (Mustafa et al. 2017) in Keras 3, backend-agnostic.

Generator: dense -> (N/16) x (N/16) x 8g -> batch-norm, ReLU -> transposed convolutions
to 4g, 2g, g (stride 2, batch-norm, ReLU) -> a last one to 1 channel with tanh, N x N.
Discriminator: convolutions d, 2d, 4d, 8d (stride 2; leaky ReLU; batch-norm from the
second on) -> flatten -> dense 1 (a logit). Kernels 5 x 5, "same" padding; weights
drawn from N(0, 0.02) (truncated for convolutions), batch-norm momentum 0.9 and
epsilon 1e-5, Adam epsilon 1e-8: the settings of the authors' TensorFlow code. With the
paper's g = d = 64 the widths are 512, 256, 128, 64 and 64, 128, 256, 512 (the authors'
code has 64, 128, 256, 384 in the discriminator, ``df_dim * 2h``; we follow the paper).

Every number worth searching is a hyper-parameter whose default is the paper's. Keras is
imported inside the builders only: the driver imports this package without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks_sci.hyperparams import Int, ParamTable, Real

N_UPSAMPLINGS = 4  # stride-2 layers per network: maps are N/16 wide at the dense layer
_TRAIN_STREAM, _EVAL_STREAMS = 1, 2  # children of a trial's seed (spawn keys)


@dataclass(frozen=True)
class HyperParams:
    """Every tunable of the GAN, with the paper's values as defaults."""

    latent_dim: int = 64
    g_filters: int = 64  # g: generator widths 8g, 4g, 2g, g
    d_filters: int = 64  # d: discriminator widths d, 2d, 4d, 8d
    kernel_size: int = 5
    g_learning_rate: float = 2e-4
    d_learning_rate: float = 2e-4
    beta1: float = 0.5
    label_flip: float = 0.01  # probability that a batch's real/fake labels are swapped
    leaky_slope: float = 0.2
    batch_size: int = 64


PARAMS = ParamTable(
    "CosmoGAN",
    {
        "latent_dim": Int(1),
        "g_filters": Int(1),
        "d_filters": Int(1),
        "kernel_size": Int(1),
        "g_learning_rate": Real(0.0, 1.0, low_open=True),
        "d_learning_rate": Real(0.0, 1.0, low_open=True),
        "beta1": Real(0.0, 1.0, high_open=True),
        "label_flip": Real(0.0, 0.5),
        "leaky_slope": Real(0.0, 1.0, high_open=True),
        "batch_size": Int(1),
    },
)
PARAM_NAMES: tuple[str, ...] = PARAMS.names


def resolve_params(params: Mapping[str, Any]) -> HyperParams:
    """Defaults overridden by ``params``, checked: names, types and ranges (ValueError
    naming the offending parameter, see ``hyperparams``)."""
    return HyperParams(**PARAMS.resolve(params))


@dataclass(eq=False)
class CosmoGAN:
    """The two networks, their optimizers and the trial's training random stream."""

    generator: Any  # keras.Model: latent [n, latent_dim] -> maps [n, N, N, 1] in [-1, 1]
    discriminator: Any  # keras.Model: maps -> logits [n, 1]
    g_optimizer: Any
    d_optimizer: Any
    hp: HyperParams
    seed: int
    rng: np.random.Generator  # batches, latent vectors and label flips of training

    def count_params(self) -> int:
        """Parameters of both networks."""
        return int(self.generator.count_params() + self.discriminator.count_params())

    def latents(self, n: int, stream: int) -> np.ndarray:
        """Fixed latent vectors [n, latent_dim] (float32) of the trial's evaluation
        ``stream``: the same ones after every epoch, so that scores are comparable."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(_EVAL_STREAMS, stream))
        return np.random.default_rng(seq).standard_normal((n, self.hp.latent_dim), np.float32)


def build_model(params: Mapping[str, Any], seed: int, map_size: int) -> CosmoGAN:
    """Fresh networks and optimizers for one trial; same seed, same initial weights."""
    hp = resolve_params(params)
    if map_size % 2**N_UPSAMPLINGS:
        raise ValueError(f"map_size must be a multiple of {2**N_UPSAMPLINGS}, got {map_size}")
    import keras

    keras.utils.set_random_seed(seed)
    generator = build_generator(hp, map_size)
    discriminator = build_discriminator(hp, map_size)
    g_optimizer, d_optimizer = (
        keras.optimizers.Adam(lr, beta_1=hp.beta1, epsilon=1e-8)
        for lr in (hp.g_learning_rate, hp.d_learning_rate)
    )
    if keras.config.dtype_policy().name == "mixed_float16":
        # What ``Model.compile`` does for float16: scaled losses keep small gradients
        # from flushing to zero (the training step scales them, see ``training``).
        g_optimizer = keras.optimizers.LossScaleOptimizer(g_optimizer)
        d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
    g_optimizer.build(generator.trainable_variables)
    d_optimizer.build(discriminator.trainable_variables)
    # Training draws from a child of the seed, independent of Keras' own stream.
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TRAIN_STREAM,)))
    return CosmoGAN(generator, discriminator, g_optimizer, d_optimizer, hp, seed, rng)


def build_generator(hp: HyperParams, map_size: int) -> Any:
    import keras
    from keras import layers

    base = map_size // 2**N_UPSAMPLINGS
    widths = [hp.g_filters * 2**i for i in reversed(range(N_UPSAMPLINGS))]  # 8g .. g
    dense_init = keras.initializers.RandomNormal(stddev=0.02)
    net = [
        keras.Input(shape=(hp.latent_dim,)),
        layers.Dense(base * base * widths[0], kernel_initializer=dense_init, name="dense"),
        layers.Reshape((base, base, widths[0]), name="reshape"),
        _batch_norm("bn0"),
        layers.ReLU(name="relu0"),
    ]
    for i, width in enumerate([*widths[1:], 1], start=1):
        net.append(
            layers.Conv2DTranspose(
                width,
                hp.kernel_size,
                strides=2,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                name=f"deconv{i}",
            )
        )
        if i < N_UPSAMPLINGS:
            net += [_batch_norm(f"bn{i}"), layers.ReLU(name=f"relu{i}")]
    # Maps leave in float32 under a mixed policy: their pixel histogram is scored.
    net.append(layers.Activation("tanh", dtype="float32", name="tanh"))
    return keras.Sequential(net, name="generator")


def build_discriminator(hp: HyperParams, map_size: int) -> Any:
    import keras
    from keras import layers

    net: list[Any] = [keras.Input(shape=(map_size, map_size, 1))]
    for i in range(N_UPSAMPLINGS):
        net.append(
            layers.Conv2D(
                hp.d_filters * 2**i,
                hp.kernel_size,
                strides=2,
                padding="same",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name=f"conv{i}",
            )
        )
        if i > 0:  # DCGAN: no batch-norm on the discriminator's input layer
            net.append(_batch_norm(f"bn{i}"))
        net.append(layers.LeakyReLU(hp.leaky_slope, name=f"lrelu{i}"))
    net += [
        layers.Flatten(name="flatten"),
        layers.Dense(  # float32 logits under a mixed policy, as the losses are
            1,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype="float32",
            name="logit",
        ),
    ]
    return keras.Sequential(net, name="discriminator")


def _batch_norm(name: str) -> Any:
    from keras import layers

    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
