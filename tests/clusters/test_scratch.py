"""Dask's scratch space is the campaign's own: never a ``$TMPDIR/dask-scratch-space``
another user of the machine made first, world-writable, with modules in it.

Dask puts its scratch folder first on the ``sys.path`` of every server and of the process
that starts a nanny (the driver of a local cluster), and a worker's reaches its trials
through ``PYTHONPATH``: a ``numpy.py`` left there ran as the campaign's user.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from supervisor.clusters.jobqueue import job_script
from supervisor.clusters.launch import open_cluster
from supervisor.clusters.profile import load

PLANTED = "sv_planted_module.py"


def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A /tmp-like folder (1777) as this process's and its children's $TMPDIR, where
    another user made ``dask-scratch-space`` first, writable by all, a module in it."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    trap = shared / "dask-scratch-space"
    trap.mkdir()
    (trap / PLANTED).write_text("import os\nos.environ['SV_PLANTED'] = 'ran'\n")
    trap.chmod(0o777)
    if os.getuid() == 0:  # as it would be: someone else's
        nobody = pwd.getpwnam("nobody")
        os.chown(trap, nobody.pw_uid, nobody.pw_gid)
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DASK_TEMPORARY_DIRECTORY", raising=False)
    return shared, trap


def _private(path: str, shared: Path) -> bool:
    """``path`` lies in a folder of ``shared`` that is this user's alone."""
    top = shared / Path(path).relative_to(shared).parts[0]
    info = top.lstat()
    return info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700


def test_a_local_cluster_takes_no_scratch_folder_another_user_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, trap = shared_tmp(tmp_path, monkeypatch)
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        client = handle.client
        paths = {
            "driver": list(sys.path),
            "scheduler": client.run_on_scheduler(lambda: list(sys.path)),
            **client.run(lambda: list(sys.path)),
        }
        trial = client.run(
            lambda: (
                __import__("supervisor.execution.node", fromlist=["node"])
                .child_environment()
                .get("PYTHONPATH", "")
            )
        )
        folders = [
            client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.local_directory),
            *client.run(lambda dask_worker: dask_worker.local_directory).values(),
        ]
        private = [_private(folder, shared) for folder in folders]
    trapped = {k: [p for p in v if p.startswith(str(trap))] for k, v in paths.items()}
    assert not any(trapped.values()), trapped
    assert not any(str(trap) in v for v in trial.values()), trial
    assert all(private), folders
    assert sorted(os.listdir(trap)) == [PLANTED]  # not a lock of ours in it
    assert sorted(os.listdir(shared)) == ["dask-scratch-space"]  # ours removed at close


def _script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return job_script(load(str(path)), tmp_path / "runs" / "st", "st")


def test_a_worker_job_makes_its_scratch_folder_private_on_its_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a compute node shared with other users' jobs, the job's workers used the
    node's /tmp/dask-scratch-space whoever had made it."""
    shared, trap = shared_tmp(tmp_path, monkeypatch)
    script = _script(tmp_path, "kind: slurm\ncores: 2\nmemory: 4GiB\n")
    prologue = [line for line in script.splitlines() if "mktemp" in line]
    assert len(prologue) == 1
    # What the job's shell does with it, and where its worker's Dask puts scratch space.
    probe = (
        "import dask, os; d = dask.config.get('temporary-directory'); print(d, os.path.isdir(d))"
    )
    shell = f"{prologue[0]}\n{shlex.quote(sys.executable)} -c {shlex.quote(probe)}\n"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    folder, existed = done.stdout.split()
    assert done.returncode == 0 and existed == "True", done.stderr
    assert Path(folder).parent == shared and not Path(folder).exists()  # removed at the end
    assert sorted(os.listdir(trap)) == [PLANTED]
    # The profile's own lines come after, so its EXIT trap (or scratch folder) wins.
    own = _script(
        tmp_path, "kind: slurm\ncores: 2\nmemory: 4GiB\njob_script_prologue: [trap x EXIT]\n"
    )
    lines = own.splitlines()
    assert lines.index(prologue[0]) < lines.index("trap x EXIT")
    # A folder the profile names is the user's choice: left as it is.
    named = _script(tmp_path, "kind: slurm\ncores: 2\nmemory: 4GiB\nlocal_directory: /lscratch\n")
    assert "mktemp" not in named and "--local-directory /lscratch" in named
