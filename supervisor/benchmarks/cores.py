"""The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (also
for plugins: a benchmark sizes its own thread pools with it, as ``benchmarks_sci`` does).

In a container or batch job with a CPU quota but no cpuset (Kubernetes, ``docker run
--cpus 2``, some Slurm and PBS configurations), the affinity lists every core of the host:
counted alone, the default packing ran a trial per host core on a 2-core quota, each with
the host's thread count. ``dask.system.cpu_count`` reads the cgroup v1/v2 quota as well.
"""

from __future__ import annotations

import os


def usable_cpus() -> list[int]:
    """Core ids to place threads on: the affinity's first ones, as many as the quota
    allows (under a quota without a cpuset any of the host's cores will do)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning
        allowed = list(range(os.cpu_count() or 1))
    # Here, not at module level: importing dask takes a tenth of a second, which
    # `supervisor --help` and every CLI error would pay.
    from dask.system import cpu_count

    return allowed[: max(1, min(len(allowed), cpu_count()))]


def usable_cores() -> int:
    """How many cores this process may keep busy (``usable_cpus``)."""
    return len(usable_cpus())
