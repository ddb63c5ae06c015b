"""The address checks made before a command starts anything: a real scheduler passes,
anything else is refused in seconds with one line."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor.clusters.addresses import check_dashboard, check_scheduler, dashboard_problem
from supervisor.errors import UserError


@pytest.fixture
def scheduler_address() -> Iterator[str]:
    """A real Dask scheduler (no workers) on a loopback port, in a thread of its own."""
    from distributed import Scheduler

    ready: dict[str, Any] = {}
    stop = threading.Event()

    async def serve() -> None:
        try:
            async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
                ready["address"] = scheduler.address
                while not stop.is_set():
                    await asyncio.sleep(0.05)
        except BaseException as error:  # shown by the test, not lost in the thread
            ready["error"] = error
            raise

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    for _ in range(2400):  # a loaded machine may take long to start one
        if ready:
            break
        stop.wait(0.05)
    assert "address" in ready, f"the scheduler did not start: {ready.get('error')!r}"
    yield ready["address"]
    stop.set()
    thread.join(30)


def test_a_dask_scheduler_passes(scheduler_address: str) -> None:
    check_scheduler(scheduler_address)
    check_scheduler(scheduler_address.removeprefix("tcp://"))  # tcp is Dask's default


def test_a_web_server_is_no_scheduler() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(UserError, match="not a Dask scheduler"):
            check_scheduler(f"tcp://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("garbage", "expected a scheduler address"),
        ("tcp://127.0.0.1:notaport", "expected a scheduler address"),
    ],
)
def test_unreadable_scheduler_addresses(address: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        check_scheduler(address)


def test_a_closed_port_is_refused_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UserError, match="cannot connect"):
        check_scheduler(f"tcp://127.0.0.1:{port}")


def test_dashboard_addresses() -> None:
    for good in (":0", "127.0.0.1:0", "localhost:8787", ":8787"):
        assert dashboard_problem(good) is None, good
    with socket.socket() as taken:  # a port in use is fine: Dask picks another
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        check_dashboard(f"127.0.0.1:{taken.getsockname()[1]}")
    for bad in ("nowhere", "127.0.0.1:http", ":70000", "a b:1"):
        assert dashboard_problem(bad, bind=False), bad
    assert "cannot listen on 192.0.2.55" in str(dashboard_problem("192.0.2.55:8787"))
