"""Submit and cancel commands that do not answer: bounded, and their jobs never lost.

dask-jobqueue runs ``sbatch``/``qsub``/``bsub``/``condor_submit`` (and ``scancel``...)
with no time limit: a batch system's controller that hangs (overloaded, failing over)
held a job's submission forever; no job was asked again and the driver's close waited for
it forever. Here each such command gets ``submit_timeout`` seconds (the profile's key,
``DEFAULT_TIMEOUT``), then is killed and fails with a message that says it timed out,
which ``supervisor.clusters.submissions`` takes for a temporary error: the job is asked
again after its backoff.

A submission that timed out may have been taken all the same (the controller answered
late). The job is found by its script, a file name of its own
(``supervisor.clusters.job_lookup``): found at once, it is the job's (adopted); found
later (``Strays.sweep``), it is cancelled, as its place was asked for again and nobody
counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from asyncio.subprocess import PIPE
from subprocess import CompletedProcess
from typing import Any

from supervisor.clusters import job_lookup

DEFAULT_TIMEOUT = 60.0  # seconds a submit or cancel command may take
SWEEP_EVERY = 30.0  # seconds between looks for a timed-out submission's late job
FORGET_AFTER = 900.0  # not in the queue this long after its timeout: never taken


class TimedOut(RuntimeError):
    """A batch system's command that gave no answer in time (killed)."""


async def call(cmd: list[str], timeout: float, *, shell: bool = False, **kwargs: Any) -> str:
    """dask-jobqueue's ``Job._call`` (the command's stdout; RuntimeError on a non-zero
    exit, in its words, which ``submissions.reason`` reads) within ``timeout`` seconds."""
    cmd_str = " ".join(cmd)
    # In a session of its own: a wrapper script's children (a site's sbatch is often one)
    # are killed with it, and do not hold its output open.
    pipes: dict[str, Any] = {"stdout": PIPE, "stderr": PIPE, "start_new_session": True}
    if shell:  # one command line (LSF's ``bsub < script``)
        proc = await asyncio.create_subprocess_shell(cmd_str, **pipes, **kwargs)
    else:
        proc = await asyncio.create_subprocess_exec(cmd[0], *cmd[1:], **pipes, **kwargs)
    try:
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as exc:  # the timeout, or the cluster closing: no process left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if not isinstance(exc, asyncio.TimeoutError):
            raise
        name = os.path.basename(cmd_str.split()[0]) if cmd_str.strip() else "command"
        raise TimedOut(f"{name} gave no answer in {timeout:.0f} s (timed out; killed)") from None
    out, err = raw_out.decode(), raw_err.decode()
    if proc.returncode != 0:
        raise RuntimeError(
            "Command exited with non-zero exit code.\n"
            f"Exit code: {proc.returncode}\nCommand:\n{cmd_str}\nstdout:\n{out}\nstderr:\n{err}\n"
        )
    return out


class Strays:
    """The scripts of submissions that timed out and whose job was not found at once;
    ``sweep`` cancels a job of one that shows up later. In the cluster's event loop."""

    def __init__(self, command: str, kind: str | None = None) -> None:
        self.command = command  # the submit command, as messages name it
        self.kind = kind or ("slurm" if command == "sbatch" else "")  # the batch system
        self.unsure: dict[str, float] = {}  # script -> when its submission timed out
        self.cancelled: list[str] = []  # job ids, for the driver's log
        self._swept = 0.0

    @property
    def findable(self) -> bool:
        return job_lookup.findable(self.kind)

    async def _jobs_of(self, scripts: set[str]) -> dict[str, str] | None:
        return await job_lookup.jobs_of(self.kind, scripts, call)

    async def taken(self, script: str) -> str | None:
        """Right after a timeout: the job the submission made, if the queue shows one."""
        if not self.findable:
            return None
        found = await self._jobs_of({script})
        if found is None or script not in found:
            self.unsure[script] = time.time()
            return None
        return found[script]

    async def sweep(self, cancel: list[str], timeout: float) -> None:
        """Cancel (``cancel`` + job id) the late jobs of timed-out submissions."""
        now = time.time()
        if not self.unsure or now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        found = await self._jobs_of(set(self.unsure))
        if found is None:
            return
        for script, job in found.items():
            try:
                await call([*cancel, job], timeout)
            except TimedOut:
                continue  # asked again at the next sweep
            except RuntimeError:
                pass  # gone meanwhile
            else:
                self.cancelled.append(job)
            del self.unsure[script]
        for script, when in list(self.unsure.items()):
            if now - when >= FORGET_AFTER:
                del self.unsure[script]


def run(cmd: list[str], timeout: float, stdin: str | None = None) -> CompletedProcess[str]:
    """``cmd`` run to its end within ``timeout`` seconds (``subprocess.run``'s own timeout
    waits on for a wrapper's children, which hold its output open); TimedOut after."""
    from supervisor.execution.node import without_storage_secrets

    proc = subprocess.Popen(
        cmd,
        # A batch command: sbatch hands a driver job this environment, and Slurm keeps it.
        env=without_storage_secrets(os.environ),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except BaseException as exc:  # the timeout, or an interrupt: no process left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        name = os.path.basename(cmd[0])
        raise TimedOut(f"{name} gave no answer in {timeout:.0f} s (timed out; killed)") from None
    return CompletedProcess(cmd, proc.returncode, out, err)
