"""Dask's scratch space (its "local directory") in a folder of this user's own.

Every Dask server (scheduler, nanny, worker) makes its scratch space in
``$TMPDIR/dask-scratch-space`` unless told otherwise, takes that folder as it finds it
when it exists and is writable, and puts it first on its ``sys.path`` (the nanny's in the
process that starts it: the driver of a local cluster; a worker's reaches its trial
processes through ``PYTHONPATH``). On a login node or a shared compute node another user
can make that folder first, world-writable (also ``dask-scratch-space-<uid>``, Dask's
fallback for a folder it cannot write), and leave ``numpy.py`` in it: the next module the
driver, a worker or a trial imported from there ran as the campaign's user. The servers
the supervisor starts get a private folder instead; a ``temporary-directory`` the user
set in Dask's configuration (a node's local disk) is the user's choice and kept.
"""

from __future__ import annotations

import shlex
from pathlib import Path

SCRATCH = "dask-scratch-space"  # Dask's own name: it then adds none of its own
# A worker job's shell makes its private folder on the node and removes it when it ends.
JOB_FOLDER = "sv_scratch"


def configured() -> bool:
    """Whether the user's Dask configuration names where scratch space goes."""
    import dask

    return bool(dask.config.get("temporary-directory", None))


def local_directory(private: Path | str) -> str | None:
    """The local directory to give a server whose private folder is ``private``; None
    (Dask's default) where the user configured one."""
    return None if configured() else str(Path(private) / SCRATCH)


def job_prologue(kind: str, keywords: dict[str, object]) -> list[str]:
    """Job script lines that give the job's workers a private scratch folder on their
    node (``mktemp -d``: 0700), removed when the job's shell ends; none where the profile
    or the configuration says where it goes."""
    import dask

    if keywords.get("local_directory") or configured():
        return []
    if dask.config.get(f"jobqueue.{kind}.local-directory", None):
        return []
    folder = f'"${JOB_FOLDER}"'
    remove = shlex.quote(f"rm -rf {folder}")
    return [
        f"{JOB_FOLDER}=$(mktemp -d) && trap {remove} EXIT"
        f" && export DASK_TEMPORARY_DIRECTORY={folder}"
    ]
