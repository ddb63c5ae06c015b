"""TLS for clusters whose workers run on other machines: per-campaign certificates.

Scheduler, workers and driver authenticate each other with one self-signed certificate
made for the campaign by distributed's ``Security.temporary()`` (or the user's own files).
Anyone without it can neither connect nor run code. Workers started by a batch system read
the certificate from files in the run directory (on the shared file system): a 0700
directory holding 0600 files, readable by the campaign's owner only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.clusters.profile import TlsFiles

if TYPE_CHECKING:
    from distributed.security import Security

TLS_DIR = "tls"
CERT_FILE = "cert.pem"  # self-signed: also the certificate authority
KEY_FILE = "key.pem"


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
