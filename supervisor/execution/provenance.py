"""Where one trial ran: batch job, node, processor, accelerator and the node-level settings
in force. Read once per trial process (the values do not change under it) and stored
with every trial it runs, so that a result can be traced to its hardware."""

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


def trial_provenance(threads: int, node_settings: dict[str, Any]) -> dict[str, Any]:
    """What a trial records about where it ran."""
    found: dict[str, Any] = {
        "node": node_name(),
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpus_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "settings": node_settings,
    }
    job = batch_job()
    if job:
        found["job"] = job
    devices = {v: os.environ[v] for v in DEVICE_VARIABLES if v in os.environ}
    if devices:
        found["devices"] = devices
    return found
