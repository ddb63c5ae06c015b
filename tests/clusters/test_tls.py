"""Secure by default: batch-system clusters talk TLS with a per-campaign certificate.

No batch system is needed: a jobqueue cluster starts its scheduler at once and submits jobs
only when trials wait, so the scheduler the campaign would use can be probed directly.
"""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client
from distributed.security import Security

from supervisor.clusters.handle import ClusterHandle
from supervisor.clusters.launch import open_cluster
from supervisor.clusters.profile import load
from supervisor.clusters.security import campaign_files, write_campaign_certificate


def address(handle: ClusterHandle) -> str:
    return str(handle.cluster.scheduler_address)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_campaign_certificate_is_private_and_new_for_each_run(tmp_path: Path) -> None:
    first = write_campaign_certificate(tmp_path)
    assert first == campaign_files(tmp_path)
    folder = Path(first.key).parent
    assert folder == (tmp_path / "tls").resolve()
    assert mode(folder) == 0o700
    assert mode(Path(first.key)) == 0o600 and mode(Path(first.cert)) == 0o600
    assert "PRIVATE KEY" in Path(first.key).read_text()
    old_cert = Path(first.cert).read_text()
    folder.chmod(0o755)  # even a loosened folder and file are made private again
    Path(first.key).chmod(0o644)
    write_campaign_certificate(tmp_path)
    assert Path(first.cert).read_text() != old_cert
    assert mode(folder) == 0o700 and mode(Path(first.key)) == 0o600


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def slurm_scheduler(run_dir: Path) -> Iterator[ClusterHandle]:
    """The scheduler `search --launcher slurm` starts (no job is submitted: no trial waits)."""
    with open_cluster(
        workers=None,
        threads=None,
        scheduler=None,
        dashboard="127.0.0.1:0",
        launcher=load("slurm"),
        run_dir=run_dir,
        study="tls",
    ) as handle:
        yield handle


def test_the_campaigns_own_client_connects_and_runs_code(slurm_scheduler: ClusterHandle) -> None:
    assert address(slurm_scheduler).startswith("tls://")
    assert "TLS on" in slurm_scheduler.description
    assert slurm_scheduler.client.run_on_scheduler(lambda: 6 * 7) == 42


def test_a_client_without_the_certificate_cannot_connect(slurm_scheduler: ClusterHandle) -> None:
    tls = address(slurm_scheduler)
    with pytest.raises(OSError, match=r"reset by peer|closed"):
        Client(tls.replace("tls://", "tcp://"), timeout="3s")  # plain TCP: dropped
    with pytest.raises(OSError, match="certificate"):
        Client(tls, security=Security.temporary(), timeout="3s")  # another campaign's


def test_the_public_certificate_without_the_key_is_not_enough(
    slurm_scheduler: ClusterHandle, run_dir: Path
) -> None:
    """The scheduler demands a client certificate signed by the campaign's key."""
    host, port = address(slurm_scheduler).removeprefix("tls://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=campaign_files(run_dir).ca_file)
    context.check_hostname = False  # the certificate names "dask-internal", not this host
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLError, match=r"CERTIFICATE_REQUIRED|EOF occurred"),
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"\x00" * 16)  # TLS 1.3 reports the refusal at the first read
        tls.recv(1)


def test_the_dashboard_listens_on_loopback_only(slurm_scheduler: ClusterHandle) -> None:
    link = slurm_scheduler.dashboard
    assert link and link.startswith("http://127.0.0.1:")
    port = int(link.rsplit(":", 1)[1].split("/")[0])
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    sockets = [
        line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")
    ]
    assert sockets == [f"127.0.0.1:{port}"]


def test_tls_can_be_turned_off_in_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("kind: slurm\ncores: 1\nmemory: 1GiB\ntls: false\n")
    with open_cluster(
        workers=None,
        threads=None,
        scheduler=None,
        dashboard="127.0.0.1:0",
        launcher=load(str(path)),
        run_dir=tmp_path,
        study="plain",
    ) as handle:
        assert address(handle).startswith("tcp://")
    assert not (tmp_path / "tls").exists()
