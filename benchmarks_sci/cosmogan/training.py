"""GAN training: one compiled step per backend, and the epoch loop they share.

Each step does what the authors' TensorFlow code does: one forward pass (generator on a
batch of latent vectors, discriminator on the real and on the generated maps, as two
calls so that batch-norm sees each set alone), then both networks' gradients from it
and both Adam updates (simultaneous updates). The discriminator's labels are swapped
for a whole batch with probability ``label_flip`` (their ``_labels``).

Why a custom loop rather than ``Model.fit`` with an overridden ``train_step``: Keras 3
has no backend-neutral gradient API, so a GAN's ``train_step`` is per-backend anyway,
and on JAX ``fit`` threads the state of one optimizer only (``self.optimizer``); a
two-optimizer GAN would have to re-implement that trainer's state handling. Here only
the gradient step is per-backend (~20 lines each: ``tf.GradientTape`` +
``optimizer.apply`` under ``tf.function``; ``jax.vjp`` over ``stateless_call`` +
``optimizer.stateless_apply`` under ``jax.jit``); the networks, losses (``keras.ops``),
batching, random streams and evaluation are shared, and batches, latent vectors and
flips come from one seeded numpy stream, identical on every backend.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from benchmarks_sci.cosmogan.model import CosmoGAN


class Step(Protocol):
    def __call__(self, real: np.ndarray, z: np.ndarray, flip: np.ndarray) -> tuple[float, float]:
        """One update of both networks; returns (d_loss, g_loss) of the batch."""

    def sync(self) -> None:
        """Write the step's state back into the Keras variables (JAX keeps it apart)."""


def make_step(gan: CosmoGAN) -> Step:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _TensorFlowStep(gan)
    if backend == "jax":
        return _JaxStep(gan)
    raise RuntimeError(f"CosmoGAN trains on the tensorflow and jax backends, not {backend!r}")


def train_epoch(gan: CosmoGAN, step: Step, x: np.ndarray) -> tuple[float, float, int]:
    """One pass over ``x`` (maps [n, N, N, 1]) in shuffled batches (the last partial one
    dropped, as in the paper's code); mean (d_loss, g_loss) and the steps trained with
    finite losses. Stops at the first non-finite loss and returns it."""
    hp, rng = gan.hp, gan.rng
    batch = min(hp.batch_size, len(x))
    order = rng.permutation(len(x))
    d_sum = g_sum = 0.0
    steps = len(x) // batch
    for i in range(steps):
        real = x[np.sort(order[i * batch : (i + 1) * batch])]  # sorted: contiguous reads
        z = rng.standard_normal((batch, hp.latent_dim), dtype=np.float32)
        flip = np.asarray(rng.random() < hp.label_flip, dtype=np.float32)
        d_loss, g_loss = step(real, z, flip)
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            step.sync()
            return d_loss, g_loss, i
        d_sum += d_loss
        g_sum += g_loss
    step.sync()
    return d_sum / steps, g_sum / steps, steps


def gan_losses(real_logits: Any, fake_logits: Any, flip: Any) -> tuple[Any, Any]:
    """Discriminator loss (sum of the real and fake cross-entropies, labels swapped when
    ``flip`` is 1) and the generator's non-saturating loss, from logits."""
    from keras import ops

    def bce(label: Any, logits: Any) -> Any:
        logits = ops.cast(logits, "float32")  # float32 losses under a mixed policy too
        target = ops.ones_like(logits) * label
        return ops.mean(ops.binary_crossentropy(target, logits, from_logits=True))

    d_loss = bce(1.0 - flip, real_logits) + bce(flip, fake_logits)
    return d_loss, bce(1.0, fake_logits)


class _TensorFlowStep:
    def __init__(self, gan: CosmoGAN) -> None:
        import tensorflow as tf

        gen, disc = gan.generator, gan.discriminator
        g_opt, d_opt = gan.g_optimizer, gan.d_optimizer

        @tf.function
        def step(real: Any, z: Any, flip: Any) -> tuple[Any, Any]:
            with tf.GradientTape(persistent=True) as tape:
                fake = gen(z, training=True)
                real_logits = disc(real, training=True)
                fake_logits = disc(fake, training=True)
                d_loss, g_loss = gan_losses(real_logits, fake_logits, flip)
                # Loss scaling under mixed_float16 (the identity otherwise).
                d_scaled, g_scaled = d_opt.scale_loss(d_loss), g_opt.scale_loss(g_loss)
            d_grads = tape.gradient(d_scaled, disc.trainable_variables)
            g_grads = tape.gradient(g_scaled, gen.trainable_variables)
            d_opt.apply(d_grads, disc.trainable_variables)
            g_opt.apply(g_grads, gen.trainable_variables)
            return d_loss, g_loss

        self._step = step

    def __call__(self, real: np.ndarray, z: np.ndarray, flip: np.ndarray) -> tuple[float, float]:
        d_loss, g_loss = self._step(real, z, flip)
        return float(d_loss), float(g_loss)

    def sync(self) -> None:
        """Nothing to do: TensorFlow updates the variables in place."""


class _JaxStep:
    """Stateless: the variables' values travel through the jitted step as a pytree."""

    def __init__(self, gan: CosmoGAN) -> None:
        import jax
        import jax.numpy as jnp
        from keras import StatelessScope

        gen, disc = gan.generator, gan.discriminator
        g_opt, d_opt = gan.g_optimizer, gan.d_optimizer
        # State order: (G trainable, G non-trainable, D trainable, D non-trainable,
        # G optimizer, D optimizer).
        self._variables = (
            gen.trainable_variables,
            gen.non_trainable_variables,
            disc.trainable_variables,
            disc.non_trainable_variables,
            g_opt.variables,
            d_opt.variables,
        )
        self._state: tuple[Any, ...] | None = None  # read from the variables when needed

        def step(state: tuple[Any, ...], real: Any, z: Any, flip: Any) -> tuple[Any, ...]:
            g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov = state

            def forward(g_tv: Any, d_tv: Any) -> tuple[Any, Any]:
                fake, g_ntv2 = gen.stateless_call(g_tv, g_ntv, z, training=True)
                real_logits, d_ntv2 = disc.stateless_call(d_tv, d_ntv, real, training=True)
                fake_logits, d_ntv2 = disc.stateless_call(d_tv, d_ntv2, fake, training=True)
                return gan_losses(real_logits, fake_logits, flip), (g_ntv2, d_ntv2)

            (d_loss, g_loss), pullback, (g_ntv, d_ntv) = jax.vjp(forward, g_tv, d_tv, has_aux=True)
            one, zero = jnp.ones_like(d_loss), jnp.zeros_like(d_loss)
            # Seeds of 1, or the loss scales under mixed_float16 (read from the state).
            with StatelessScope(state_mapping=[*zip(d_opt.variables, d_ov, strict=True)]):
                d_seed = d_opt.scale_loss(one)
            with StatelessScope(state_mapping=[*zip(g_opt.variables, g_ov, strict=True)]):
                g_seed = g_opt.scale_loss(one)
            _, d_grads = pullback((d_seed, zero))  # d d_loss / d D; jit drops the unused half
            g_grads, _ = pullback((zero, g_seed))  # d g_loss / d G
            g_tv, g_ov = g_opt.stateless_apply(g_ov, g_grads, g_tv)
            d_tv, d_ov = d_opt.stateless_apply(d_ov, d_grads, d_tv)
            return (g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov), d_loss, g_loss

        self._step = jax.jit(step)

    def __call__(self, real: np.ndarray, z: np.ndarray, flip: np.ndarray) -> tuple[float, float]:
        if self._state is None:
            self._state = tuple([v.value for v in group] for group in self._variables)
        self._state, d_loss, g_loss = self._step(self._state, real, z, flip)
        return float(d_loss), float(g_loss)

    def sync(self) -> None:
        """Assign the state and forget it: Keras' jitted ``predict`` donates (frees) the
        variables' buffers, so the next step must read them afresh."""
        if self._state is None:
            return
        for group, values in zip(self._variables, self._state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        self._state = None
