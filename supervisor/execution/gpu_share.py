"""The trial processes of one node spread over its GPUs: calibration probes, local workers.

Every such process saw every GPU of the node, and each framework took the first: on a
node of 4 GPUs ``supervisor calibrate`` measured all its probes on GPU 0 (and the
profile it wrote divided that packing among the job's GPUs, ``trials_per_gpu``), and
the local cluster ran every trial on GPU 0 while the others idled. Process i now sees
only GPU i mod G of the node's G, as the visible-devices variables name them (the batch
job's ``CUDA_VISIBLE_DEVICES``, else every GPU ``nvidia-smi -L`` lists), as a batch
job's workers do (``supervisor.clusters.gpu_pin``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from supervisor.execution.node import shared_gpu_environment

VISIBLE_ENVS = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
SMI_TIMEOUT_S = 10.0  # nvidia-smi on a node whose driver hangs: no GPU spread, not a hang


def node_gpus(environ: Mapping[str, str]) -> list[str]:
    """The node's GPUs as the visible-devices variables name them; none on a CPU node."""
    for key in VISIBLE_ENVS:
        if key in environ:  # narrowed by the batch system or the user ("": none)
            return [d.strip() for d in environ[key].split(",") if d.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    listed = done.stdout.splitlines() if done.returncode == 0 else []
    return [str(i) for i in range(sum(line.startswith("GPU ") for line in listed))]


def slot_environment(
    slot: int, slots: int, gpus: list[str], environ: Mapping[str, str]
) -> dict[str, str]:
    """What process ``slot`` of ``slots`` on a node with ``gpus`` adds to ``environ``: its
    own GPU where the node has several, memory allocated as needed where its GPU (or
    the node's one) is shared."""
    env = dict.fromkeys(VISIBLE_ENVS, gpus[slot % len(gpus)]) if len(gpus) > 1 else {}
    if slots > max(1, len(gpus)):
        env.update(shared_gpu_environment(environ))
    return env
