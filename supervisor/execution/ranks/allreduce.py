"""Data-parallel training of a compiled Keras 3 model over an MPI communicator.

``data_parallel(model, comm, seed)`` changes a model in place so that the benchmark's
ordinary ``model.fit(x, y, batch_size=B, ...)`` trains it on ``comm.size`` ranks:

* the initial weights are broadcast from rank 0;
* ``fit`` draws one permutation of the training samples per epoch, the same on every
  rank (seeded by ``seed`` and the epoch), cuts it into global batches of ``B`` and
  gives each rank its contiguous ``B // K`` slice of every global batch;
* the optimizer averages the gradients over the ranks (one allreduce of a flat float32
  buffer per step) before it applies them, so every rank applies the same update;
* the per-batch and per-epoch training logs (``loss``, ``accuracy`` ...) are averaged
  over the ranks, so callbacks see global numbers and take the same decisions (a
  non-finite loss stops every rank at the same batch).

What is exact and what is not. Each step applies the mean of the ranks' gradients of
their shard's mean loss, which is the gradient of the global batch's mean loss: the
same update as one rank with batch ``B``, up to float rounding. Logged means of
per-sample metrics (loss, accuracy) are exact likewise; non-decomposable training
metrics (AUC, precision) are averaged per rank and so only approximate. Not equal to one
rank: the shuffle (ours, not Keras'; with ``shuffle=False`` the batches are Keras'
own), a global batch whose size is not a multiple of ``K`` (its last ``B % K`` samples
are left out, so shards stay equal), and random layers (dropout, noise): every rank
draws from the same seeded stream, for its own samples. Batch normalisation uses
per-rank batch statistics (not synchronised), as in Horovod's default. Validation data
passed to ``fit`` are not sharded: every rank scores all of them, with the same weights.

Backends: TensorFlow (the allreduce runs in the graph through ``tf.numpy_function``;
XLA is turned off for training since it cannot compile that), JAX (``jax.pure_callback``
inside the jitted step) and eager backends (torch) through numpy. Keras is imported
inside the functions: ``ShardPlan`` is plain numpy.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_BATCH = 32  # Keras' default when fit gets no batch_size


class RanksUnsupported(TypeError):
    """The model or the way the benchmark trains it cannot run data-parallel."""


@dataclass(frozen=True)
class ShardPlan:
    """Which training samples each rank trains on, batch by batch.

    Global batch ``i`` of an epoch is ``perm[i*B:(i+1)*B]`` (the last one may be short),
    cut to a multiple of ``size``; rank ``r`` takes its ``r``-th equal contiguous part.
    """

    n: int  # training samples
    global_batch: int
    rank: int
    size: int
    seed: int
    shuffle: bool

    def __post_init__(self) -> None:
        if self.global_batch < self.size:
            raise RanksUnsupported(
                f"batch size {self.global_batch} is smaller than the {self.size} ranks: "
                "every rank needs at least one sample per batch"
            )
        if self.n < self.size:
            raise RanksUnsupported(
                f"{self.n} training samples cannot be shared by {self.size} ranks"
            )

    @property
    def num_batches(self) -> int:
        full, last = divmod(self.n, self.global_batch)
        return full + (1 if last >= self.size else 0)

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        # The same on every rank: a function of the seed and the epoch only.
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def global_indices(self, perm: np.ndarray, i: int) -> np.ndarray:
        batch = perm[i * self.global_batch : (i + 1) * self.global_batch]
        return batch[: len(batch) - len(batch) % self.size]

    def indices(self, perm: np.ndarray, i: int) -> np.ndarray:
        batch = self.global_indices(perm, i)
        part = len(batch) // self.size
        return batch[self.rank * part : (self.rank + 1) * part]


def data_parallel(model: Any, comm: Any, seed: int) -> Any:
    """Make the compiled Keras ``model`` train data-parallel over ``comm`` (see the
    module doc); returns the same model. Raises ``RanksUnsupported`` for anything but a
    compiled ``keras.Model``."""
    import keras

    if not isinstance(model, keras.Model):
        raise RanksUnsupported(
            "ranks > 1 need build_model to return a compiled keras.Model, "
            f"not {type(model).__name__}"
        )
    if getattr(model, "optimizer", None) is None:
        raise RanksUnsupported("ranks > 1 need a compiled model (model.optimizer is None)")
    state = _RankState(comm)
    if model.built:  # unbuilt models create their weights from the same seed on every rank
        model.set_weights(comm.bcast(model.get_weights() if comm.rank == 0 else None, root=0))
    _average_gradients(model.optimizer, state)
    original_fit = model.fit
    signature = inspect.signature(original_fit)

    def fit(*args: Any, **kwargs: Any) -> Any:
        return _sharded_fit(model, original_fit, signature.bind(*args, **kwargs), state, seed)

    # object.__setattr__: Keras' attribute tracking has no business with these.
    object.__setattr__(model, "fit", fit)
    object.__setattr__(model, "_supervisor_ranks", state)
    return model


def rank_state(model: Any) -> _RankState | None:
    """The ranks' bookkeeping of a model from ``data_parallel`` (None for others)."""
    state = getattr(model, "_supervisor_ranks", None)
    return state if isinstance(state, _RankState) else None


class _RankState:
    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.in_fit = False
        self.fits = 0  # calls of the sharded fit: 0 after training means a custom loop


def _sharded_fit(
    model: Any,
    original_fit: Callable[..., Any],
    bound: inspect.BoundArguments,
    state: _RankState,
    seed: int,
) -> Any:
    import keras

    args = bound.arguments
    kwargs = dict(args.pop("kwargs", {}))
    comm = state.comm
    x, y = args.pop("x", None), args.pop("y", None)
    sample_weight = args.pop("sample_weight", None)
    if args.pop("steps_per_epoch", None) is not None:
        raise RanksUnsupported("ranks > 1 do not support fit(steps_per_epoch=...)")
    leaves = [a for a in keras.tree.flatten((x, y, sample_weight)) if a is not None]
    if not leaves or not all(hasattr(a, "shape") for a in leaves):
        raise RanksUnsupported(
            "ranks > 1 need model.fit on in-memory arrays (not a dataset or a generator)"
        )
    # numpy (no copy for numpy inputs): batches are gathered by fancy indexing.
    x, y, sample_weight = (
        None if p is None else keras.tree.map_structure(np.asarray, p)
        for p in (x, y, sample_weight)
    )
    arrays = keras.tree.flatten(x)
    n = len(arrays[0])
    split = float(args.pop("validation_split", 0.0) or 0.0)
    if split:  # as Keras does: the last fraction, before shuffling
        at = math.floor(n * (1.0 - split))
        parts = [p for p in (x, y, sample_weight) if p is not None]
        if args.get("validation_data") is None:
            args["validation_data"] = tuple(_slice(p, at, None) for p in parts)
        x, y, sample_weight = (
            None if p is None else _slice(p, None, at) for p in (x, y, sample_weight)
        )
        n = at
    plan = ShardPlan(
        n=n,
        global_batch=int(args.pop("batch_size", None) or DEFAULT_BATCH),
        rank=comm.rank,
        size=comm.size,
        seed=seed,
        shuffle=bool(args.pop("shuffle", True)),
    )
    epoch = int(args.get("initial_epoch", 0) or 0)
    batches = _shard_dataset(x, y, sample_weight, plan, epoch)
    args["callbacks"] = [_average_logs(comm), *(args.get("callbacks") or [])]
    if comm.size > 1 and keras.backend.backend() == "tensorflow" and model.jit_compile:
        model.jit_compile = False  # XLA cannot compile the tf.numpy_function allreduce
        model.train_function = None  # a step traced with XLA before is stale
    state.in_fit, state.fits = True, state.fits + 1
    try:
        return original_fit(batches, shuffle=False, **args, **kwargs)
    finally:
        state.in_fit = False


def _slice(structure: Any, start: int | None, stop: int | None) -> Any:
    import keras

    return keras.tree.map_structure(lambda a: a[start:stop], structure)


def _shard_dataset(x: Any, y: Any, sample_weight: Any, plan: ShardPlan, epoch: int) -> Any:
    import keras

    class ShardedBatches(keras.utils.PyDataset):
        """This rank's slice of every global batch; the epoch advances at its end."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = epoch
            self.perm = plan.permutation(epoch)

        @property
        def num_batches(self) -> int:
            return plan.num_batches

        def __len__(self) -> int:
            return plan.num_batches

        def __getitem__(self, i: int) -> tuple[Any, ...]:
            idx = plan.indices(self.perm, i)
            parts = (x, y) if sample_weight is None else (x, y, sample_weight)
            return tuple(
                None if p is None else keras.tree.map_structure(lambda a: a[idx], p) for p in parts
            )

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.perm = plan.permutation(self.epoch)

    return ShardedBatches()


def _average_logs(comm: Any) -> Any:
    """A callback that replaces each numeric training log by its mean over the ranks,
    in place, so that the callbacks after it (the benchmark's reporter, NaN checks) see
    global values and decide alike on every rank."""
    import keras

    def average(logs: dict[str, Any] | None) -> None:
        if not logs or comm.size == 1:
            return
        keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.number)))
        values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        total = np.empty_like(values)
        comm.Allreduce(values, total)
        for key, value in zip(keys, total / comm.size, strict=True):
            logs[key] = float(value)

    class AverageLogs(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            average(logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            average(logs)

    return AverageLogs()


def _average_gradients(optimizer: Any, state: _RankState) -> None:
    """Wrap ``optimizer.apply`` (what ``apply_gradients`` and JAX's ``stateless_apply``
    call) so that it applies the ranks' mean gradients."""
    original = optimizer.apply

    def apply(grads: Sequence[Any], trainable_variables: Any = None) -> Any:
        if not state.in_fit:
            # A custom training loop: its batches are not sharded and ranks would drift.
            raise RanksUnsupported(
                "this benchmark trains outside model.fit (a custom training loop); "
                "it does not support ranks > 1"
            )
        return original(mean_over_ranks(list(grads), state.comm), trainable_variables)

    object.__setattr__(optimizer, "apply", apply)


def mean_over_ranks(grads: list[Any], comm: Any) -> list[Any]:
    """``grads`` (tensors of the current backend, None allowed) averaged over ``comm``;
    inside a traced step where the backend traces (TF, JAX)."""
    if comm.size == 1:
        return grads
    import keras

    present = [i for i, g in enumerate(grads) if g is not None]
    backend = keras.backend.backend()
    reduce = _host_allreduce(comm)
    if backend == "tensorflow":
        averaged = _mean_tf([grads[i] for i in present], reduce)
    elif backend == "jax":
        averaged = _mean_jax([grads[i] for i in present], reduce)
    else:  # eager backends: plain numpy
        arrays = [keras.ops.convert_to_numpy(grads[i]) for i in present]
        flat = reduce(np.concatenate([a.astype(np.float32).ravel() for a in arrays]))
        pieces = np.split(flat, np.cumsum([a.size for a in arrays])[:-1])
        averaged = [
            keras.ops.convert_to_tensor(p.reshape(a.shape).astype(a.dtype))
            for p, a in zip(pieces, arrays, strict=True)
        ]
    out = list(grads)
    for i, g in zip(present, averaged, strict=True):
        out[i] = g
    return out


def _host_allreduce(comm: Any) -> Callable[[np.ndarray], np.ndarray]:
    def reduce(flat: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(flat, dtype=np.float32)
        total = np.empty_like(flat)
        comm.Allreduce(flat, total)  # MPI.SUM
        total /= comm.size
        return total

    return reduce


def _mean_tf(grads: list[Any], reduce: Callable[[np.ndarray], np.ndarray]) -> list[Any]:
    import tensorflow as tf

    dense = [tf.convert_to_tensor(g) for g in grads]  # IndexedSlices (embeddings) too
    flat = tf.concat([tf.reshape(tf.cast(g, tf.float32), [-1]) for g in dense], axis=0)
    total = tf.numpy_function(reduce, [flat], tf.float32, stateful=True)
    total = tf.ensure_shape(total, flat.shape)
    sizes = [int(g.shape.num_elements()) for g in dense]
    return [
        tf.cast(tf.reshape(p, g.shape), g.dtype)
        for p, g in zip(tf.split(total, sizes), dense, strict=True)
    ]


def _mean_jax(grads: list[Any], reduce: Callable[[np.ndarray], np.ndarray]) -> list[Any]:
    import jax
    import jax.numpy as jnp

    flat = jnp.concatenate([jnp.ravel(g).astype(jnp.float32) for g in grads])
    total = jax.pure_callback(
        lambda b: reduce(np.asarray(b)), jax.ShapeDtypeStruct(flat.shape, jnp.float32), flat
    )
    pieces = jnp.split(total, np.cumsum([g.size for g in grads])[:-1])
    return [p.reshape(g.shape).astype(g.dtype) for p, g in zip(pieces, grads, strict=True)]


def check_trained_by_fit(model: Any, size: int) -> None:
    """Raise when ``size`` > 1 ranks trained ``model`` without the sharded ``fit``: the
    benchmark used its own loop, so every rank trained alone on all the data."""
    state = rank_state(model)
    if size > 1 and state is not None and state.fits == 0:
        raise RanksUnsupported(
            "this benchmark did not train through model.fit; it does not support ranks > 1"
        )
