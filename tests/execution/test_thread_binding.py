"""Packed trial processes do not bind their threads to the node's first cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from supervisor.execution.node import thread_environment

FIT = (
    "import json, os, numpy as np\n"
    "from sklearn.cluster import KMeans\n"
    "KMeans(n_clusters=2, n_init=1).fit(np.random.rand(500, 4))\n"
    "print(json.dumps(sorted(os.sched_getaffinity(0))))\n"
)


def test_a_site_s_openmp_binding_does_not_pile_packed_trials_on_core_0() -> None:
    """A job script's OMP_PROC_BIND=spread and OMP_PLACES=cores (what HPC centres
    advise for one OpenMP program per node) made each trial process's libgomp bind
    it to the first core at its first parallel region: every packed trial on core 0."""
    site = {**os.environ, "OMP_PROC_BIND": "spread", "OMP_PLACES": "cores"}
    proc = subprocess.run(
        [sys.executable, "-c", FIT],
        env={**site, **thread_environment(1)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == sorted(os.sched_getaffinity(0))
