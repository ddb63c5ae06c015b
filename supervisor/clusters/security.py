"""TLS for every cluster the supervisor starts: per-campaign certificates.

Scheduler, workers and driver authenticate each other with one self-signed certificate
made for the campaign by distributed's ``Security.temporary()`` (or the user's own files).
Anyone without it can neither connect nor run code. Workers started by a batch system read
the certificate from files in the run directory (on the shared file system); the local
cluster's live in a private temporary folder (``temporary_credentials``), removed when the
cluster closes. Either way: a 0700 directory holding 0600 files, the owner's only.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.clusters.profile import TlsFiles

if TYPE_CHECKING:
    from distributed.security import Security

TLS_DIR = "tls"
CERT_FILE = "cert.pem"  # self-signed: also the certificate authority
KEY_FILE = "key.pem"
TEMP_PREFIX = "supervisor-tls-"  # + host-pid- of the process whose cluster uses it


def campaign_files(run_dir: Path) -> TlsFiles:
    """Where a campaign's own certificate lives (whether or not it exists yet)."""
    folder = (run_dir / TLS_DIR).resolve()
    return TlsFiles(str(folder / CERT_FILE), str(folder / CERT_FILE), str(folder / KEY_FILE))


def write_campaign_certificate(run_dir: Path) -> TlsFiles:
    """A new certificate for this run of the campaign, written with owner-only access."""
    from distributed.security import Security

    fresh = Security.temporary()
    files = campaign_files(run_dir)
    folder = Path(files.cert).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # also when it existed with wider access
    _write_private(Path(files.key), fresh.tls_worker_key)
    _write_private(Path(files.cert), fresh.tls_worker_cert)
    return files


@dataclass(frozen=True)
class TemporaryCredentials:
    """A certificate made for one local cluster, in a folder of its own (which also holds
    the cluster's Dask scratch space: ``supervisor.clusters.scratch``)."""

    folder: Path
    files: TlsFiles

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def temporary_credentials() -> TemporaryCredentials:
    """A new certificate in a fresh 0700 folder (mkdtemp) of the user's runtime directory,
    a tmpfs where there is one: nothing under runs/ is written before the campaign's
    checks pass, and no key outlives the cluster. The folder is named after this host and
    process: those of processes killed with -9 are removed here, by the next campaign."""
    parent = _runtime_dir() or tempfile.gettempdir()
    _remove_orphans(Path(parent))
    folder = Path(tempfile.mkdtemp(prefix=f"{_owner_prefix()}{os.getpid()}-", dir=parent))
    try:
        return TemporaryCredentials(folder, write_campaign_certificate(folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _owner_prefix() -> str:
    # The host too: a /tmp shared by containers (other pid namespaces) keeps their folders.
    return f"{TEMP_PREFIX}{socket.gethostname()}-"


def _remove_orphans(parent: Path) -> None:
    """Remove this user's credential folders of this host whose process is gone."""
    prefix = _owner_prefix()
    for folder in parent.glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        try:
            mine = folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now: not ours to judge
        return True
    return True


def _runtime_dir() -> str | None:
    """$XDG_RUNTIME_DIR when it is this user's private folder, else None (tempfile's)."""
    folder = os.environ.get("XDG_RUNTIME_DIR")
    if not folder:
        return None
    try:
        info = os.stat(folder)
    except OSError:
        return None
    private = info.st_uid == os.getuid() and info.st_mode & 0o077 == 0
    return folder if private and os.path.isdir(folder) else None


def security_from_files(files: TlsFiles) -> Security:
    """A Security for every role (scheduler, workers, client) from one cert + key."""
    from distributed.security import Security

    roles = {
        f"tls_{role}_{part}": getattr(files, part)
        for role in ("scheduler", "worker", "client")
        for part in ("cert", "key")
    }
    return Security(require_encryption=True, tls_ca_file=files.ca_file, **roles)


def in_memory_config(security: Security) -> dict[str, object]:
    """Dask config that makes every Scheduler, Worker and Client of a process use TLS."""
    prefix = "distributed.comm.tls"
    config: dict[str, object] = {"distributed.comm.require-encryption": True}
    for role in ("scheduler", "worker", "client"):
        tls = security.get_tls_config_for_role(role)
        config[f"{prefix}.ca-file"] = tls["ca_file"]
        config[f"{prefix}.{role}.cert"] = tls["cert"]
        config[f"{prefix}.{role}.key"] = tls["key"]
    return config


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        f.write(text)
