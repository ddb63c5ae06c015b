"""Per-process set-up of the compute node for trials: threads and framework logging.

Runs on workers only. Thread pools of TensorFlow/oneDNN/OpenMP are sized once per
worker process, before the first trial builds a model, from the cores the worker slot
was given; afterwards the framework no longer accepts changes.
"""

from __future__ import annotations

import os
import sys

_configured_threads: int | None = None


def thread_environment(threads: int) -> dict[str, str]:
    """Environment for a worker process whose trials may use ``threads`` cores."""
    n = str(max(1, threads))
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1" if threads < 4 else "2",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


def configure(threads: int) -> None:
    """Size the framework's thread pools for this process (idempotent).

    Before TensorFlow is imported the environment is enough (TF reads it at start-up);
    importing TF here would cost seconds for benchmarks that never use it.
    """
    global _configured_threads
    if _configured_threads is not None:
        return
    if "tensorflow" not in sys.modules:
        os.environ.update(thread_environment(threads))
    else:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
            tf.config.threading.set_inter_op_parallelism_threads(1 if threads < 4 else 2)
        except RuntimeError:
            pass  # TF already initialised its pools in this process; the env applied
    _configured_threads = threads


def rss_mb() -> float:
    """Resident memory of this process now (Linux), in MiB; 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def release_model_memory() -> None:
    """Free what a finished trial left in the framework (no growth across trials)."""
    if "keras" in sys.modules:
        import gc

        import keras

        keras.backend.clear_session(free_memory=True)
        gc.collect()
