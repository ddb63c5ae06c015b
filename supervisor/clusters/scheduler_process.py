"""The Dask scheduler in a process of its own, for the clusters the supervisor starts.

In the driver's process the scheduler's event loop and the driver's ask/tell loop share
one interpreter lock: each message the scheduler handles waits for the driver's Python,
and each proposal waits for the scheduler's. Measured with 2,000 no-op trials on 2
workers (``python -m supervisor.perf.overhead``, README "Performance"), against Dask's
own one-task-at-a-time loop: 1.74x with the scheduler in the driver's process, 1.40x
with it in a process of its own (in-memory storage: 1.61x and 1.12x).

``SchedulerProcess`` is a ``distributed.deploy.spec.ProcessInterface``: any SpecCluster
(``LocalCluster``'s base, dask-jobqueue's clusters) takes it as its scheduler. The child
runs ``main`` below. Its settings arrive on its standard input, not its command line,
which other users of the machine can read. It stops when that input closes: when the
cluster closes it, and when the driver dies, even by SIGKILL, so no scheduler outlives
its campaign.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.deploy.spec import ProcessInterface

from supervisor.execution.node import without_storage_secrets

if TYPE_CHECKING:
    from distributed.security import Security

START_TIMEOUT = 120.0  # seconds for the child to import Dask and listen (a loaded node)
STOP_TIMEOUT = 10.0  # seconds it has to close its workers' connections before SIGKILL
LOG_TAIL = 2000  # characters of the child's log shown when it fails to start


class SchedulerProcess(ProcessInterface):
    """A ``distributed.Scheduler`` in a child process; ``options`` are its keywords
    (JSON values: host, interface, port, protocol, dashboard_address, ...) and
    ``security`` its TLS settings (files or PEM text), None for plain TCP. Its log (errors
    only) goes to ``log_file``."""

    def __init__(self, *, log_file: str, security: Security | None = None, **options: Any) -> None:
        super().__init__()
        self.security, self.log_file, self.options = security, log_file, options
        self.process: asyncio.subprocess.Process | None = None
        self.dashboard_host: str | None = None  # where the dashboard listens, once started
        self.dashboard_port: int | None = None

    async def start(self) -> None:
        spec = {
            "options": self.options,
            "tls": _tls(self.security),
            "config": _json_config(),
        }
        # Owner-only, whatever the umask: it sits beside the cluster's key.
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=without_storage_secrets(os.environ),  # the driver's alone
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(spec).encode() + b"\n")
        await self.process.stdin.drain()
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        if not line:
            await self.close()
            raise RuntimeError(f"the Dask scheduler did not start: {self._log_tail()}")
        started = json.loads(line)
        self.address = started["address"]
        self.dashboard_host, self.dashboard_port = started["dashboard"] or (None, None)
        await super().start()

    async def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()  # the child's signal to close the scheduler
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        await super().close()

    def _log_tail(self) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace").strip()
        except OSError:
            text = ""
        return " ".join(text[-LOG_TAIL:].split()) or "no output"


def _tls(security: Security | None) -> dict[str, Any] | None:
    """What the child's Security needs: the scheduler's role and the CA."""
    if security is None:
        return None
    tls = security.get_tls_config_for_role("scheduler")
    if not tls.get("ca_file"):
        return None
    return {
        "require_encryption": bool(security.require_encryption),
        "tls_ca_file": tls["ca_file"],
        "tls_scheduler_cert": tls["cert"],
        "tls_scheduler_key": tls["key"],
    }


def _json_config() -> dict[str, Any]:
    """This process's Dask settings (``dask.config.set`` included) that JSON can carry:
    the child applies them before it makes its scheduler."""
    import dask

    return _jsonable(dask.config.config)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = _jsonable(item)
            if item is not _DROP:
                out[str(key)] = item
        return out
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return _DROP if _DROP in items else items
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _DROP


_DROP = object()  # a setting JSON cannot carry (a class, a callable): the child's default


# -- the child --------------------------------------------------------------------------


async def _serve(spec: dict[str, Any]) -> None:
    from distributed import Scheduler
    from distributed.security import Security

    from supervisor.clusters import scratch

    tls = spec["tls"]
    security = Security(**tls) if tls else None
    # A scratch space of its own, not one another user may have made (``scratch``).
    with tempfile.TemporaryDirectory(prefix="supervisor-scheduler-") as private:
        options = {"local_directory": scratch.local_directory(private), **spec["options"]}
        async with Scheduler(**options, security=security) as scheduler:
            server = getattr(scheduler, "http_server", None)
            dashboard = None if server is None else [getattr(server, "address", ""), server.port]
            print(json.dumps({"address": scheduler.address, "dashboard": dashboard}), flush=True)
            os.dup2(2, 1)  # anything printed later goes to the log, not a pipe nobody reads
            # Until the parent closes our input: it closed the cluster, or it died.
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)


def main() -> None:
    # The driver closes this scheduler (through our input) after it has recorded its
    # running trials as interrupted. A Ctrl-C reaches every process of the terminal's group
    # and Slurm signals every process of a job: dying first, the scheduler took the trials
    # with it, recorded as lost workers (an attempt each, then "died on all attempts").
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spec = json.loads(sys.stdin.buffer.readline())
    import dask

    dask.config.update(dask.config.config, spec["config"], priority="new")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    asyncio.run(_serve(spec))


if __name__ == "__main__":
    main()
