"""Node-level set-up of a trial for the slot it runs in: threads, oneDNN, XLA and
numeric precision. Trials are not pinned to cores (a worker knows no slot index of its
node); their thread pools are sized to their share and OpenMP binding is turned off.

Runs on workers only (the driver merely carries ``NodeSettings``). Thread pools of
TensorFlow/oneDNN/OpenMP are sized once per worker process, before the first trial
builds a model, from the cores the worker slot was given; afterwards the framework no
longer accepts changes. Choices marked "auto" follow what was measured rather than
folklore: XLA made the weather CNN twice as slow on a CPU node (846 against 1,630
samples/s), so "auto" leaves XLA to Keras' own rule (on for GPUs, off for CPUs);
bfloat16 pays on GPUs and not on CPUs without AMX.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Xla = Literal["auto", "on", "off"]
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
XLA_CHOICES: tuple[Xla, ...] = ("auto", "on", "off")
PRECISIONS: tuple[Precision, ...] = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class NodeSettings:
    """How trials use the node; the ``node:`` section of a space file."""

    xla: Xla = "auto"
    precision: Precision = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_configured_threads: int | None = None
# The storage's password where its database client reads it (libpq, MySQL's client).
# Only the driver opens the storage: trials (any plugin's code, whose output is logged)
# and batch worker jobs (whose environment the batch system keeps, for its accounting
# and its administrators) never need it.
STORAGE_SECRETS = ("PGPASSWORD", "MYSQL_PWD")


def without_storage_secrets(environ: Any) -> dict[str, str]:
    """``environ`` without the storage's password (``STORAGE_SECRETS``)."""
    return {k: v for k, v in environ.items() if k not in STORAGE_SECRETS}


def drop_storage_secrets() -> None:
    """The storage's password out of this process's environment: a worker's or a
    scheduler's (local or MPI ranks), started with the driver's, never opens the storage,
    and every process it starts, any trial's code included, inherits what it holds."""
    for name in STORAGE_SECRETS:
        os.environ.pop(name, None)


def thread_environment(threads: int) -> dict[str, str]:
    """Environment for a worker process whose trials may use ``threads`` cores.

    Set before the process imports a framework, so that TF's intra-op pool, oneDNN,
    OpenMP and the BLAS libraries behind numpy and scikit-learn all agree on the same
    number and several trials packed on one node do not oversubscribe its cores.
    """
    n = str(max(1, threads))
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        # One inter-op thread unless there are cores to spare for independent ops.
        "TF_NUM_INTEROP_THREADS": "1" if threads < 4 else "2",
        # oneDNN kernels for convolutions and matmuls (TF's default on x86 Linux; explicit
        # so that a site-wide TF_ENABLE_ONEDNN_OPTS=0 does not silently cost us).
        "TF_ENABLE_ONEDNN_OPTS": "1",
        # Idle OpenMP threads sleep at once instead of spinning 200 ms: packed trials
        # would otherwise burn each other's cores between parallel regions.
        "KMP_BLOCKTIME": "0",
        "OMP_WAIT_POLICY": "PASSIVE",
        # No thread binding, whatever the site's modules or job script set (NERSC, Cray:
        # OMP_PROC_BIND=spread, OMP_PLACES=cores): each trial process's OpenMP runtime
        # (scikit-learn's libgomp, PyTorch, MKL) bound itself to the node's first cores,
        # so every packed trial ran on core 0 while the others idled.
        "OMP_PROC_BIND": "false",
        "KMP_AFFINITY": "disabled",
        # TF's INFO and WARNING lines off, unless the user set a level (to debug a GPU).
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


def shared_gpu_environment(environ: Any) -> dict[str, str]:
    """Environment for trial processes that share a GPU (trials packed per GPU, local
    workers on a GPU machine, calibration probes): TensorFlow maps nearly all of a GPU's
    memory and JAX 75% of it at their first use, so every trial process but the first
    found none left and failed out of memory. They allocate as they need instead; a
    value ``environ`` (the user's) already has wins."""
    wanted = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    return {k: v for k, v in wanted.items() if k not in environ}


def child_environment() -> dict[str, str]:
    """The environment of a process a worker starts to run trials (``python -m ...``):
    this process's (less the storage's password), with the folders of its ``sys.path``
    that are not the installation's on PYTHONPATH. A notebook's ``sys.path.append("src")``
    reaches the Dask workers (multiprocessing hands them the driver's path) but not their
    children: there the benchmark module the driver had loaded was not found, and every
    trial failed. The installation's own folders stay where the child puts them: ahead of
    the standard library, a site-packages could shadow it."""
    import site

    installed = [
        Path(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    ]
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    env = without_storage_secrets(os.environ)
    extra = [
        entry
        for entry in sys.path
        if entry  # "": the working directory, which ``-m`` puts first anyway
        and entry != user_site
        and not any(Path(entry).is_relative_to(prefix) for prefix in installed)
    ]
    if extra:
        known = env.get("PYTHONPATH", "").split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in [*extra, *known] if p))
    return env


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
    _silence_retracing_warnings()
    _configured_threads = threads


def _silence_retracing_warnings() -> None:
    # Every trial builds a new model, so TF's "tf.function retracing" warning fires by
    # design and would flood the worker logs.
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def accelerator() -> tuple[str, float | None]:
    """("gpu", compute capability) or ("cpu", None) for the current Keras backend."""
    import keras

    backend = keras.config.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            cc = getattr(device, "compute_capability", None)
            return "gpu", float(cc) if cc else None
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
            return "gpu", float(f"{cc[0]}.{cc[1]}") if cc else None
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return "gpu", float(f"{major}.{minor}")
    return "cpu", None


def resolve_precision(settings: NodeSettings, device: tuple[str, float | None]) -> str:
    """The Keras dtype policy a trial runs under.

    "auto": bfloat16 mixed precision on GPUs that have it (compute capability 8.0+,
    A100/H100), float16 on older GPUs (V100: tensor cores, loss scaling by Keras),
    float32 on CPUs.
    """
    if settings.precision != "auto":
        return settings.precision
    kind, capability = device
    if kind != "gpu":
        return "float32"
    return "mixed_bfloat16" if capability is None or capability >= 8.0 else "mixed_float16"


def _gpu_device_files() -> bool:
    """Whether the node has an NVIDIA or AMD GPU at all, without importing a framework."""
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd"))


def before_build(settings: NodeSettings) -> str:
    """Set the global dtype policy for the model about to be built; returns it.

    On a CPU node with "auto" nothing is imported: float32 is every framework's default,
    and benchmarks that never use Keras (the toy, scikit-learn baselines) stay light.
    """
    cpu_only = settings.precision == "float32" or not _gpu_device_files()
    if settings.precision in ("auto", "float32") and "keras" not in sys.modules and cpu_only:
        return "float32"
    import keras

    policy = resolve_precision(settings, accelerator())
    keras.config.set_dtype_policy(policy)
    return policy


def after_build(model: Any, settings: NodeSettings) -> None:
    """Force XLA on or off for a built Keras model; "auto" keeps Keras' rule."""
    if settings.xla != "auto" and hasattr(model, "jit_compile"):
        model.jit_compile = settings.xla == "on"


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
        keras.config.set_dtype_policy("float32")
        gc.collect()
