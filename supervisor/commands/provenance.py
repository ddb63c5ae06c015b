"""Where a campaign's numbers came from: ``runs/<study>/manifest.json``.

Created by the first ``search`` of a run and appended by every resume, one session each:
the command, the resolved space, the versions of every package that shapes a result,
Python, the git commit and dirty state of this project and of the benchmark's package
(when they are git checkouts), the host, the storage (without its password) and the
cluster with its job script. A year later it says which code produced a number; with a
trial's seed and parameters it is what a bit-for-bit rerun needs.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.errors import UserError

MANIFEST_FILE = "manifest.json"
PACKAGES = (
    "supervisor",
    "optuna",
    "dask",
    "distributed",
    "dask-jobqueue",
    "dask-mpi",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "jax",
    "jaxlib",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "mpi4py",
)
GIT_TIMEOUT = 5.0


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (absent ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_state(path: Path) -> dict[str, Any] | None:
    """The commit and dirty state of the git checkout holding ``path``, or None when it is
    not in one (an installed package) or git is missing."""
    folder = path if path.is_dir() else path.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=True,
        )
        return done.stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"root": top, "commit": commit, "dirty": bool(changed)}


def module_file(target: str) -> Path | None:
    """The source file of the module of a ``"module:attr"`` target, without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec(target.partition(":")[0])
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def session(
    *,
    command: str,
    experiment: dict[str, Any],
    benchmark_target: str,
    storage: str,
    cluster: str,
    launcher: dict[str, Any] | None,
) -> dict[str, Any]:
    """This process's session of a campaign."""
    code = {"supervisor": git_state(Path(__file__).resolve())}
    plugin = module_file(benchmark_target)
    if plugin is not None:
        code["benchmark"] = git_state(plugin)
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions(),
        "code": code,
        "benchmark": {"target": benchmark_target, "file": str(plugin) if plugin else None},
        "storage": storage,
        "cluster": cluster,
        "launcher": _without_secrets(launcher),
        "experiment": experiment,
    }


def read(run_dir: Path) -> dict[str, Any] | None:
    """The manifest of a run, or None when it has none (runs before manifests)."""
    path = run_dir / MANIFEST_FILE
    if not path.exists():
        return None
    if not path.is_file():
        raise UserError(f"{path}: not a readable manifest (not a regular file)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sessions"), list):
        raise UserError(f"{path}: not a manifest (expected a 'sessions' list)")
    for entry in data["sessions"]:  # one recorded before they were masked
        if isinstance(entry, dict) and isinstance(entry.get("launcher"), dict):
            entry["launcher"] = _without_secrets(entry["launcher"])
    return data


def _without_secrets(launcher: dict[str, Any] | None) -> dict[str, Any] | None:
    """The launcher's record with the secrets its job script assigns masked (a profile's
    prologue that exports a token): the manifest goes into exports, made to be shared."""
    from supervisor.rundir import hide_assigned_secrets

    script = launcher.get("job_script") if launcher else None
    if launcher is None or not isinstance(script, str):
        return launcher
    return {**launcher, "job_script": hide_assigned_secrets(script)}


def append(run_dir: Path, entry: dict[str, Any]) -> Path:
    """Add a session to the run's manifest, creating it on the first. Drivers that start
    together on one run append one after the other (a lock on the run directory): each
    read the manifest before the other wrote it, and one session was lost."""
    path = run_dir / MANIFEST_FILE
    with _locked(run_dir):
        data = read(run_dir) or {"created": entry["started"], "sessions": []}
        data["sessions"].append(entry)
        atomic.write(path, json.dumps(data, indent=2, default=str) + "\n", mode=0o600)
    return path


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """``flock`` on the folder itself: released when its holder dies, no file left. A
    file system without flock (Lustre mounted without it) goes unlocked, as before."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def summary(manifest: dict[str, Any] | None) -> dict[str, str]:
    """Rows for a report: the code and packages of the latest session."""
    if not manifest or not manifest["sessions"]:
        return {}
    last = manifest["sessions"][-1]
    rows = {}
    for name, state in (last.get("code") or {}).items():
        if state:
            dirty = ", with uncommitted changes" if state.get("dirty") else ""
            rows[f"code ({name})"] = f"git {str(state.get('commit'))[:12]}{dirty}"
    packages = last.get("packages") or {}
    rows["packages"] = ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))
    rows["python"] = str(last.get("python"))
    rows["sessions"] = str(len(manifest["sessions"]))
    return rows
