"""Seeded, chunked, multi-threaded generation shared by the synthetic data generators.

A data set of ``n`` samples is generated in chunks; chunk ``i`` draws from its own
random stream (a ``child`` of the data seed, by ``i``) and writes only its own slice, so
the result has the same bits on any number of threads.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from supervisor.benchmarks.cores import usable_cores

SeedLike = int | np.random.SeedSequence


def seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """``seed`` as the root of a tree of random streams."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def child(root: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """The i-th child of ``root`` without advancing it (``spawn`` would mutate it)."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))


def available_threads() -> int:
    """Cores this process may use (its CPU affinity and quota), capped by OMP_NUM_THREADS
    (which the supervisor sets to a worker's share of the node)."""
    cores = usable_cores()
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return max(1, min(cores, int(env))) if env.isdigit() else cores


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Keep BLAS to one thread per caller (threadpoolctl comes with scikit-learn;
    without it, results may differ in the last bit between thread counts)."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        yield
        return
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def run_chunks(
    n: int, chunk: int, work: Callable[[int, slice], None], threads: int | None
) -> None:
    """Call ``work(i, slice_i)`` for every chunk of ``chunk`` samples out of ``n``, on
    ``threads`` threads (default: ``available_threads()``). numpy releases the GIL in
    the bulk work, so threads share the chunks; BLAS runs single-threaded in every case,
    since its kernels, and so the last bits of the results, depend on its thread count."""
    n_chunks = -(-n // chunk)

    def one(i: int) -> None:
        work(i, slice(i * chunk, min(n, (i + 1) * chunk)))

    workers = min(n_chunks, available_threads() if threads is None else max(1, threads))
    with single_threaded_blas():
        if workers <= 1:
            for i in range(n_chunks):
                one(i)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(n_chunks)))
