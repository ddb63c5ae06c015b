"""Where one trial ran: batch job, node, processor, accelerator, the share of the node it
held and the node-level settings in force. Stored with every trial (the ``provenance``
attribute, ``supervisor.execution.execute``), so that a result can be traced to its
hardware, rerun, and costed in allocation units (``supervisor.report.cost``)."""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from typing import Any

# Job id variables of the batch systems dask-jobqueue drives, first found wins.
JOB_ID_VARIABLES = (
    ("slurm", "SLURM_JOB_ID"),
    ("pbs", "PBS_JOBID"),
    ("lsf", "LSB_JOBID"),
    ("sge", "JOB_ID"),
    ("htcondor", "CONDOR_JOB_ID"),
)
NODE_VARIABLES = ("SLURMD_NODENAME", "PBS_NODENAME", "LSB_HOSTS")
DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
# Cores of the batch job, from the launcher profile (its job script exports it); a job of
# dask-jobqueue is one node's worth, so a trial holds threads / these of a node.
JOB_CORES_ENV = "SUPERVISOR_JOB_CORES"
# Set by a GPU job's script (supervisor.clusters.gpu_pin, which cannot be imported here):
# each worker sees one GPU, shared by this many trials.
GPUS_ENV = "SUPERVISOR_GPUS"
TRIALS_PER_GPU_ENV = "SUPERVISOR_TRIALS_PER_GPU"


def batch_job() -> dict[str, str]:
    """The batch system and job id this process runs under, if any."""
    for system, variable in JOB_ID_VARIABLES:
        value = os.environ.get(variable)
        if value:
            job = {"system": system, "job_id": value}
            array = os.environ.get("SLURM_ARRAY_TASK_ID")
            if system == "slurm" and array:
                job["array_task"] = array
            return job
    return {}


def node_name() -> str:
    """The node as the batch system names it (several may share one host in tests)."""
    for variable in NODE_VARIABLES:
        value = os.environ.get(variable, "").split()
        if value:
            return value[0]
    return socket.gethostname()


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def node_cores() -> int | None:
    """Cores of the node as the allocation counts them: the batch job's (the launcher
    profile's ``cores``), else the machine's within its CPU quota, which the local
    cluster's workers are sized by too (``dask.system.cpu_count``): ``os.cpu_count()``
    alone counted a 64-core host under a 2-CPU quota, and each of 2 trials filling it
    was costed 1/64 of a node. Not this process's affinity: an MPI rank bound to its
    own cores (srun --cpu-bind) is one of several on its node."""
    given = os.environ.get(JOB_CORES_ENV, "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    machine = os.cpu_count()
    quota = _cpu_quota()
    return min(machine, quota) if machine and quota else machine


def _cpu_quota() -> int | None:
    """The cgroup (v1 or v2) CPU quota in whole CPUs, rounded up as dask rounds it."""
    import math

    import dask.system

    read = getattr(dask.system, "_try_extract_cgroup_cpu_quota", None)  # dask's own reader
    quota, period = read() if read is not None else (None, None)
    if not quota or not period or quota <= 0 or period <= 0:
        return None
    return math.ceil(quota / period)


def gpu_share() -> float:
    """GPUs this process holds: those of a GPU job's worker (one, shared by trials_per_gpu
    trials); 0 where no batch job gave it any (a local run's GPUs are not counted)."""
    gpus = os.environ.get(GPUS_ENV, "")
    if not (gpus.isdigit() and int(gpus) > 0):
        return 0.0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") or os.environ.get("HIP_VISIBLE_DEVICES")
    devices = [d for d in (visible or "").split(",") if d.strip()]
    per = os.environ.get(TRIALS_PER_GPU_ENV, "1")
    return len(devices) / (int(per) if per.isdigit() and int(per) > 0 else 1)


def trial_provenance(
    threads: int, node_settings: dict[str, Any], ranks: int = 1
) -> dict[str, Any]:
    """What a trial records about where it ran. ``cores``: the cores it held (threads of
    each of its ranks), ``node_cores``: of its node, ``gpus``: the GPUs it held."""
    found: dict[str, Any] = {
        "node": node_name(),
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpus_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "ranks": ranks,
        "cores": threads * ranks,
        "node_cores": node_cores(),
        "gpus": gpu_share(),
        "settings": node_settings,
    }
    job = batch_job()
    if job:
        found["job"] = job
    devices = {v: os.environ[v] for v in DEVICE_VARIABLES if v in os.environ}
    if devices:
        found["devices"] = devices
    return found
