"""One GPU per worker process of a GPU job, or N workers packed on each GPU.

A batch job with ``gpus: G`` and ``trials_per_gpu: N`` runs G x N worker processes
(``dask worker --nworkers``, named ``<job>-0`` ... ``<job>-(G*N-1)``). Each loads this
module (``--preload``) before it takes a task; worker i sees only GPU i // N, through
``CUDA_VISIBLE_DEVICES`` (and ROCm's ``HIP_VISIBLE_DEVICES``), which its trial process
inherits. Where the batch system already narrowed the visible GPUs (Slurm sets
``CUDA_VISIBLE_DEVICES`` to the job's), worker i takes the (i // N)-th of those.

Each such worker also offers the Dask resource ``GPU=1`` and the driver asks it of every
trial, so on a shared scheduler with CPU-only workers trials go to GPU workers only.
"""

from __future__ import annotations

import os
from typing import Any

from supervisor.execution.gpu_share import VISIBLE_ENVS
from supervisor.execution.node import shared_gpu_environment

TRIALS_PER_GPU_ENV = "SUPERVISOR_TRIALS_PER_GPU"
GPUS_ENV = "SUPERVISOR_GPUS"


def worker_index(name: str) -> int:
    """Position of a worker among its job's processes, from its name (``job-3`` -> 3; a
    job of one process has no suffix: 0)."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() and "-" in name else 0


def device_for(index: int, trials_per_gpu: int, gpus: int, visible: str | None) -> str:
    """The GPU (as the visible-devices variable names it) of worker ``index``."""
    devices = [d for d in (visible or "").split(",") if d.strip()] or [str(i) for i in range(gpus)]
    if not devices:
        raise ValueError("no GPU to pin: the job sees none")
    return devices[(index // max(1, trials_per_gpu)) % len(devices)].strip()


def pin(name: str, environ: dict[str, str] | Any = os.environ) -> str | None:
    """Narrow ``environ`` to this worker's GPU; returns it (None when not a GPU job)."""
    gpus = int(environ.get(GPUS_ENV, "0") or 0)
    if gpus <= 0:
        return None
    per = int(environ.get(TRIALS_PER_GPU_ENV, "1") or 1)
    device = device_for(worker_index(name), per, gpus, environ.get("CUDA_VISIBLE_DEVICES"))
    for key in VISIBLE_ENVS:
        environ[key] = device
    if per > 1:  # several trial processes on this GPU
        environ.update(shared_gpu_environment(environ))
    return device


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: runs in the worker process before it starts."""
    pin(str(worker.name))
