"""The default local cluster is its owner's only: TLS with a certificate made for it.

Loopback keeps other machines out, not other users of this one. These tests attack a
running campaign from a second uid (``nobody``), with a plain-TCP cluster as the control
that shows the same attack runs code as the campaign's user when nothing stops it.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from distributed import Client, LocalCluster, SpecCluster
from distributed.security import Security

from supervisor.clusters.launch import open_cluster
from supervisor.clusters.security import temporary_credentials
from tests.faultkit import start_search, toy_space

NOBODY = ("setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups")

# Run as nobody: every way in to each address (a Client that submits, the rpc that runs
# a function on a scheduler, worker or nanny), over plain TCP and over TLS with a
# certificate of its own; then reading each file given. Prints what happened, as JSON.
ATTACK = r"""
import asyncio, json, sys
from distributed import Client
from distributed.core import rpc
from distributed.protocol.pickle import dumps
from distributed.security import Security

job = json.loads(sys.argv[1])

def attack(marker):
    import os
    with open(marker, "w") as f:
        f.write(str(os.getuid()))
    return os.getuid()

async def client(address, security):
    c = await Client(address, security=security, asynchronous=True, timeout="10s")
    try:
        return await c.submit(attack, job["marker"], pure=False).result()
    finally:
        await c.close()

async def call(address, security, op):
    args = security.get_connection_args("client") if security else {}
    r = rpc(address, connection_args=args, timeout=10)
    try:
        payload = {"function": dumps(attack), "args": dumps((job["marker"],))}
        return await getattr(r, op)(**payload)
    finally:
        await r.close_rpc()

async def main():
    tries = {}
    for hostport in job["targets"]:
        for scheme, security in (("tcp", None), ("tls", Security.temporary())):
            address = f"{scheme}://{hostport}"
            tries[f"{address} client.submit"] = client(address, security)
            for op in ("run", "run_function"):
                tries[f"{address} rpc.{op}"] = call(address, security, op)
    # A plain-TCP handshake sent to the HTTP dashboard waits for an answer that never comes.
    bounded = [asyncio.wait_for(t, 30) for t in tries.values()]
    done = await asyncio.gather(*bounded, return_exceptions=True)
    out = {}
    for name, result in zip(tries, done):
        if isinstance(result, BaseException):
            out[name] = f"refused: {type(result).__name__}: {str(result)[:200]}"
        else:
            out[name] = f"ran: {result!r}"
    for path in job["read"]:
        try:
            with open(path, "rb") as f:
                out[f"read {path}"] = f"read {len(f.read())} bytes"
        except OSError as exc:
            out[f"read {path}"] = f"denied: {type(exc).__name__}"
    print(json.dumps(out))

asyncio.run(main())
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def nobody_can_run_python() -> str | None:
    """Why a second uid cannot be tried here (None: it can)."""
    if os.geteuid() != 0:
        return f"switching to the uid 'nobody' needs root; this runs as uid {os.geteuid()}"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import distributed"],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=120,
    )
    if probe.returncode != 0:
        reason = " ".join(probe.stderr.split())[-200:]
        return f"user nobody cannot run {sys.executable} with distributed: {reason}"
    return None


def as_nobody(targets: list[str], marker: Path, read: list[Path]) -> dict[str, str]:
    job = json.dumps({"targets": targets, "marker": str(marker), "read": [str(p) for p in read]})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [*NOBODY, sys.executable, "-c", ATTACK, job],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.fixture
def second_uid() -> None:
    reason = nobody_can_run_python()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user may enter (a test's tmp_path is root's alone): what protects
    the files a campaign writes here is their own mode and their directory's."""
    folder = Path(tempfile.mkdtemp(prefix="sv-open-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def host_ports(pids: list[int]) -> list[str]:
    """Every TCP address the processes listen on."""
    found = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                found.append(f"{conn.laddr.ip}:{conn.laddr.port}")
    return sorted(found)


def test_the_local_cluster_talks_tls_with_private_credentials_removed_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: None
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0") as handle:
        scheduler = str(handle.cluster.scheduler_address)
        assert scheduler.startswith("tls://127.0.0.1:")
        assert f"TLS on, scheduler {scheduler}" in handle.description
        workers = handle.client.scheduler_info()["workers"]
        assert workers and all(w.startswith("tls://127.0.0.1:") for w in workers)
        assert handle.client.submit(lambda: 6 * 7).result(timeout=60) == 42
        (folder,) = tmp_path.glob("supervisor-tls-*")
        # Beside the certificate: the workers' Dask scratch space (clusters.scratch).
        scratch = folder / "dask-scratch-space"
        files = [p for p in folder.rglob("*") if p.is_file() and scratch not in p.parents]
        assert sorted(p.name for p in files) == ["cert.pem", "key.pem", "scheduler.log"]
        assert scratch.is_dir()
        dirs = [p for p in folder.rglob("*") if p.is_dir() and scratch not in (p, *p.parents)]
        for d in [folder, *dirs]:
            assert mode(d) == 0o700 and d.stat().st_uid == os.getuid(), d
        for f in files:
            assert mode(f) == 0o600 and f.stat().st_uid == os.getuid(), f
        # Without the campaign's certificate, its own user is refused as well.
        with pytest.raises(OSError):
            Client(scheduler.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises(OSError):
            Client(scheduler, security=Security.temporary(), timeout="3s")
    assert not folder.exists(), "the key outlived its cluster"


def test_keys_left_by_a_killed_campaign_are_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exited = [sys.executable, "-c", "import os; print(os.getpid())"]
    gone = subprocess.run(exited, capture_output=True, text=True, check=True, timeout=60)
    host = socket.gethostname()
    dead = tmp_path / f"supervisor-tls-{host}-{int(gone.stdout)}-x1"  # its process exited
    live = tmp_path / f"supervisor-tls-{host}-{os.getpid()}-x2"  # a campaign still running
    elsewhere = tmp_path / f"supervisor-tls-other-host-{int(gone.stdout)}-x3"
    for folder in (dead, live, elsewhere):
        folder.mkdir()
    made = temporary_credentials()
    try:
        assert made.folder.name.startswith(f"supervisor-tls-{host}-{os.getpid()}-")
        assert not dead.exists() and live.exists() and elsewhere.exists()
    finally:
        made.remove()
    assert not made.folder.exists()


def test_a_cluster_that_fails_to_start_leaves_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(SpecCluster, "__init__", _fail)
    with (
        pytest.raises(RuntimeError, match="no cluster today"),
        open_cluster(workers=1, threads=1, scheduler=None, dashboard="127.0.0.1:0"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def _fail(*args: object, **kwargs: object) -> None:
    raise RuntimeError("no cluster today")


def test_the_attack_runs_code_on_a_plain_tcp_cluster(second_uid: None, open_dir: Path) -> None:
    """The control: the old default (plain TCP on loopback) lets nobody run code as the
    cluster's user, so a refusal below is the campaign's doing, not the harness's."""
    marker = open_dir / "pwned"
    readable = open_dir / "shared.txt"
    readable.write_text("anyone may read this")
    readable.chmod(0o644)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        scheduler_port=0,
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        address = str(cluster.scheduler_address).removeprefix("tcp://")
        results = as_nobody([address], marker, [readable])
    assert results[f"tcp://{address} client.submit"] == f"ran: {os.getuid()}"
    assert results[f"read {readable}"] == f"read {len(readable.read_bytes())} bytes"
    assert marker.read_text() == str(os.getuid())


def test_another_user_cannot_use_a_running_campaigns_cluster(
    second_uid: None, open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nobody tries every port a running `supervisor search` listens on, every way, and
    reads for its key and run files: all refused, nothing runs; SIGTERM removes the key."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(open_dir / "tmp"))
    (open_dir / "tmp").mkdir(mode=0o755)
    space = toy_space(open_dir, 10_000, delay=0.5)  # runs until stopped
    proc = start_search(space, "--workers", "2")
    try:
        lines = _lines(proc)
        scheduler = _wait_for_line(lines, "TLS on, scheduler tls://").rsplit(" ", 1)[1]
        driver = psutil.Process(proc.pid)
        tree = [proc.pid, *(p.pid for p in driver.children(recursive=True))]
        targets = host_ports(tree)
        assert scheduler.removeprefix("tls://") in targets
        assert len(targets) >= 4, targets  # scheduler, dashboard, 2 workers (and nannies)
        assert all(t.startswith("127.0.0.1:") for t in targets), "loopback only"
        (credentials,) = (open_dir / "tmp").glob("supervisor-tls-*")
        run_dir = open_dir / "runs" / "toy"
        assert mode(run_dir) == 0o700 and mode(credentials) == 0o700
        secrets = [credentials / "tls" / "key.pem", run_dir / "journal.log", run_dir / "run.json"]
        marker = open_dir / "pwned"
        results = as_nobody(targets, marker, secrets)
        ran = {k: v for k, v in results.items() if not v.startswith(("refused", "denied"))}
        assert ran == {}, ran
        assert not marker.exists(), "code ran on the campaign's cluster"
        assert proc.poll() is None, "the campaign ran throughout"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # stopped as Slurm stops it: gracefully
        proc.wait(timeout=120)
    assert not credentials.exists(), "the key outlived the campaign"


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The campaign's output, line by line, read without blocking the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue[str], text: str, timeout: float = 180) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} in {timeout} s; output: {seen}")
