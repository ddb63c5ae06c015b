"""A CPU quota without a cpuset (``docker run --cpus 2`` on a 64-core host, Kubernetes,
some Slurm and PBS setups) sizes the local packing and the threads per trial: the
affinity alone lists every core of the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Before anything else in the process: a host of 64 cores whose cgroup (v2) allows 2
# CPUs. dask.system reads the quota through ``open``, looked up in its own module first.
FAKE_QUOTA = """
import builtins, io, os
import dask.system

def _open(path, *args, **kwargs):
    files = {"/proc/self/cgroup": "0::/\\n", "/sys/fs/cgroup/cpu.max": "200000 100000\\n"}
    if str(path) in files:
        return io.StringIO(files[str(path)])
    if str(path).startswith("/sys/fs/cgroup/"):
        raise FileNotFoundError(path)
    return builtins.open(path, *args, **kwargs)

"""
INSTALL = "dask.system.open = _open\nos.sched_getaffinity = lambda pid: set(range(64))\n"


def quota_of_2_on_64_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import dask.system

    namespace: dict[str, object] = {}
    exec(FAKE_QUOTA, namespace)  # defines _open only

    monkeypatch.setattr(dask.system, "open", namespace["_open"], raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_the_default_local_packing_and_threads_follow_a_cpu_quota(
    tmp_path: Path,
) -> None:
    """The search's default on such a node was 64 trial processes (or, with --workers 1,
    one trial of 64 threads) sharing 2 CPUs of quota."""
    space = tmp_path / "toy.yaml"
    space.write_text(
        'benchmark: {name: "tests.toy_benchmark:ToyBenchmark"}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 3}\n"
    )
    run_cli = (
        FAKE_QUOTA
        + INSTALL
        + (
            "import runpy, sys\nsys.argv = ['supervisor', *sys.argv[1:]]\n"
            "runpy.run_module('supervisor.cli', run_name='__main__')\n"
        )
    )
    command = [sys.executable, "-c", run_cli, "search", str(space), "--dry-run"]
    command += ["--runs-dir", str(tmp_path / "runs")]

    def would_run(*flags: str) -> str:
        env = {**os.environ, "SUPERVISOR_CALIBRATION_DIR": str(tmp_path)}  # none saved
        proc = subprocess.run(
            [*command, *flags], capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return next(li for li in proc.stdout.splitlines() if li.startswith("would run"))

    assert would_run().endswith("a local Dask cluster of 2 workers x 1 thread(s) per trial")
    assert would_run("--workers", "1").endswith(
        "a local Dask cluster of 1 workers x 2 thread(s) per trial"
    )


def test_every_count_of_usable_cores_follows_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calibration's packings, the local cluster's checks and the data generators'
    threads count the same cores."""
    from benchmarks_sci.parallel import available_threads
    from supervisor.clusters.local import local_size
    from supervisor.commands.preflight import local_cluster
    from supervisor.errors import UserError
    from supervisor.execution import calibrate, provenance

    quota_of_2_on_64_cores(monkeypatch)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(provenance.JOB_CORES_ENV, raising=False)
    assert calibrate.usable_cores() == [0, 1]
    assert max(p.cores for p in calibrate.grid(len(calibrate.usable_cores()))) == 2
    assert local_size(None, None) == (2, 1)
    assert available_threads() == 2
    # What a trial records as its node's cores, which the report's cost divides by: a
    # trial of 1 thread on the 64 host cores was costed 1/64 of a node, not 1/2.
    assert provenance.trial_provenance(1, {})["node_cores"] == 2
    with pytest.raises(UserError, match=r"--threads 8: this machine has 2 usable cores"):
        local_cluster(None, 8)


def test_a_trial_bound_to_a_few_cores_still_records_its_node_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An MPI rank bound to its own cores (srun --cpu-bind) is one of several on its
    node: its trials are costed a share of the node, not each a whole one."""
    import dask.system

    from supervisor.execution import provenance

    monkeypatch.delenv(provenance.JOB_CORES_ENV, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(dask.system, "_try_extract_cgroup_cpu_quota", lambda: (None, None))
    assert provenance.trial_provenance(2, {})["node_cores"] == 64
