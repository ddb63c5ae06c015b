"""Worker jobs the batch system refuses, or keeps queued: said, never waited for in silence.

dask-jobqueue submits each worker job with ``qsub``/``bsub``/``sbatch``/``condor_submit``;
when that command fails it logs a traceback and never asks again, and the search waited
for workers forever (an unknown queue, an account without allocation, a job over a
limit). Here every submission's outcome is recorded (``Submissions``, by the job class
``watched`` makes): a refused job is dropped ``ASK_AGAIN_AFTER`` seconds later, so that
adaptive scaling asks again (a per-user limit of queued jobs passes), and ``Watch``, which
the driver calls every turn of its loop, stops the campaign with the batch system's own
words when it took none of the campaign's jobs (nothing could ever run), says a later
refusal once per distinct message, and says every ``PENDING_EVERY`` seconds that jobs it
took wait in the queue while no worker is connected.

A temporary error of the batch system (``temporary``: Slurm's controller restarting or
too busy to answer, "Socket timed out on send/recv", a PBS server or an SGE qmaster out of
reach) stops nothing at once: its job is asked again sooner (``RETRY_FIRST`` seconds,
doubling up to ``ASK_AGAIN_AFTER``), and only ``TEMPORARY_FOR`` seconds of such errors
with no job taken stop the campaign. A submit command that does not answer is killed after
the profile's ``submit_timeout``: a temporary error (``supervisor.clusters.unanswered``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from supervisor.clusters import unanswered
from supervisor.clusters.job_lookup import as_submitted
from supervisor.clusters.unanswered import DEFAULT_TIMEOUT, Strays, TimedOut

ASK_AGAIN_AFTER = 60.0  # seconds a refused job's place is held before it is asked again
PENDING_AFTER = 60.0  # no worker this long after a job was taken: say it waits
PENDING_EVERY = 300.0  # and say it again this often
CHECK_EVERY = 1.0  # the driver calls every 0.5 s; the cluster's state is read this often
SHOWN = 300  # characters of the batch system's message at most
RETRY_FIRST = 5.0  # a temporary error's job is asked again after this, doubling each time
TEMPORARY_FOR = 600.0  # temporary errors with no job taken this long: the campaign stops
# The words of the batch systems' errors that pass (lower case): a controller or server
# restarting, failing over or too busy to answer; a connection that broke.
TEMPORARY = (
    "socket timed out",  # Slurm: "Socket timed out on send/recv operation"
    "resource temporarily unavailable",  # EAGAIN (Slurm's controller busy)
    "unable to contact slurm controller",
    "temporarily unable",  # "Slurm temporarily unable to accept job"
    "zero bytes were transmitted",  # Slurm: the connection dropped
    "slurmctld",  # "slurmctld is in standby mode", "... not responding"
    "connection refused",
    "connection reset",
    "connection timed out",
    "timed out",
    "try again",
    "not responding",  # LSF: "Batch system not responding"
    "cannot connect to server",  # PBS: qsub with its server away
    "lsf is down",
    "lim is down",
    "unable to contact qmaster",  # SGE
    "commlib error",  # SGE's client library: no connection
    "failed to connect",  # HTCondor: "Failed to connect to local queue manager"
)


def temporary(why: str) -> bool:
    """Whether the batch system's message is of an error that passes (``TEMPORARY``)."""
    said = why.lower()
    return any(words in said for words in TEMPORARY)


class Refused(RuntimeError):
    """A worker job the batch system did not take (recorded; ``Watch`` says it)."""


def reason(exc: BaseException) -> str:
    """The batch system's words from dask-jobqueue's error: the submit command's stderr
    (else its stdout) on one line, with its exit code."""
    text = str(exc)
    if isinstance(exc, TimedOut):
        return text
    if not text.startswith("Command exited with non-zero exit code"):
        return f"{type(exc).__name__}: {' '.join(text.split())}"[:SHOWN]
    parts = {"stdout": "", "stderr": "", "code": ""}
    section = ""
    for line in text.splitlines():
        head = line.rstrip(":")
        if line.endswith(":") and head in ("stdout", "stderr", "Command"):
            section = head
        elif line.startswith("Exit code: "):
            parts["code"] = line.removeprefix("Exit code: ")
        elif section in ("stdout", "stderr") and line.strip():
            parts[section] += " " + line.strip()
    said = (parts["stderr"] or parts["stdout"]).strip() or "no message"
    return f"{said[:SHOWN]} (exit {parts['code']})"


class Submissions:
    """The outcomes of a cluster's job submissions. Written by the jobs' ``start``, in the
    cluster's event loop thread; read by the driver's thread."""

    def __init__(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, kind: str | None = None
    ) -> None:
        self.command = command  # the submit command, as the messages name it
        self.timeout = timeout  # seconds its submit and cancel commands may take
        self.accepted = 0
        self.submitting = 0  # submissions not answered yet (a refusal may come first)
        self.waiting: dict[str, float] = {}  # taken jobs -> when, until a worker is seen
        self.refusals: list[str] = []  # the batch system's messages, in order
        self.delays: list[float] = []  # each refused job's wait before it is asked again
        self._refused: dict[str, float] = {}  # refused jobs -> when asked again
        self.strays = Strays(command, kind)  # timed-out submissions whose job may come late
        self._temporary_since: float | None = None  # temporary errors only, since then
        self._streak = 0  # temporary errors in a row: the next wait doubles
        self._lock = threading.Lock()

    def submit(self) -> None:
        with self._lock:
            self.submitting += 1

    def took(self, name: str, now: float) -> None:
        with self._lock:
            self.submitting -= 1
            self.accepted += 1
            self.waiting[name] = now
            self._temporary_since, self._streak = None, 0

    def refused(self, name: str, why: str, now: float) -> None:
        with self._lock:
            self.submitting -= 1
            delay = ASK_AGAIN_AFTER
            if temporary(why):
                delay = min(ASK_AGAIN_AFTER, RETRY_FIRST * 2**self._streak)
                self._streak += 1
                if self._temporary_since is None:
                    self._temporary_since = now
            self.refusals.append(why)
            self.delays.append(delay)
            self._refused[name] = now + delay

    def none_taken(self, now: float) -> str | None:
        """The first refusal when every submission so far, all answered, was refused, and
        one of them for good (or temporarily, but for ``TEMPORARY_FOR`` seconds)."""
        with self._lock:
            if not self.refusals or self.accepted or self.submitting:
                return None
            final = next((why for why in self.refusals if not temporary(why)), None)
            if final is not None:
                return final
            since = self._temporary_since
            if since is not None and now - since >= TEMPORARY_FOR:
                return f"{self.refusals[-1]}, for {(now - since) / 60:.0f} min"
            return None

    def to_ask_again(self, now: float) -> list[str]:
        """Refused jobs whose place was held long enough: to drop, so they are asked again."""
        with self._lock:
            due = [n for n, t in self._refused.items() if now >= t]
            for name in due:
                del self._refused[name]
            return due

    def connected(self, jobs: set[str]) -> tuple[int, float | None]:
        """Jobs with a worker seen are no longer waiting; the jobs still waiting, and
        when the first of them was taken."""
        with self._lock:
            for name in jobs & set(self.waiting):
                del self.waiting[name]
            return len(self.waiting), min(self.waiting.values(), default=None)


def watched(job_cls: Any, submissions: Submissions) -> type:
    """``job_cls`` recording each submission's outcome in ``submissions``; a refused one
    raises ``Refused``, which the cluster (``supervisor.clusters.adaptive``) keeps quiet.
    Its submit and cancel commands get ``submissions.timeout`` seconds; a submission that timed out
    but was taken (its job in the queue) is this job's."""

    from distributed.core import Status

    async def call(cmd: list[str], *, shell: bool = False, **kwargs: Any) -> str:
        from supervisor.execution.node import without_storage_secrets

        # The job gets the submit command's environment (sbatch, bsub, qsub -V): not the
        # storage's password, which only the driver uses.
        kwargs.setdefault("env", without_storage_secrets(os.environ))
        return await unanswered.call(cmd, submissions.timeout, shell=shell, **kwargs)

    async def submit_job(self: Any, script_filename: str) -> str:
        try:
            return str(await job_cls._submit_job(self, script_filename))
        except TimedOut:
            job_id = await submissions.strays.taken(script_filename)
            if job_id is None:
                raise
            # As the submit command says it: the job-id pattern finds it.
            return as_submitted(submissions.strays.kind, job_id)

    async def start(self: Any) -> None:
        submissions.submit()
        try:
            await job_cls.start(self)
        except Exception as exc:
            submissions.refused(str(self.name), reason(exc), time.time())
            self.status = Status.failed  # as the cluster's close expects of such a job
            raise Refused(reason(exc)) from exc
        submissions.took(str(self.name), time.time())

    members = {"start": start, "_call": staticmethod(call), "_submit_job": submit_job}
    return type(job_cls.__name__, (job_cls,), members)


class Watch:
    """What the driver asks each turn (``Driver.watch``): a line to stop the campaign with,
    or None; lines worth saying go to ``log`` meanwhile."""

    def __init__(self, submissions: Submissions, cluster: Any, label: str, logs: str) -> None:
        self.submissions, self.cluster = submissions, cluster
        self.label = label  # the profile, as messages start: "pbs.yaml"
        self.logs = logs  # where the jobs' own logs go
        self._said = 0  # refusals said so far
        self._looked = 0.0
        self._pending_said = 0.0

    def __call__(self, log: Callable[[str], None]) -> str | None:
        now = time.time()
        if now - self._looked < CHECK_EVERY:
            return None
        self._looked = now
        subs = self.submissions
        first = subs.none_taken(now)
        if first is not None:
            return f"{self.label}: {subs.command} refuses the worker jobs: {first}"
        # Each refusal with its wait (the two lists are appended one after the other).
        said = list(zip(list(subs.refusals), list(subs.delays), strict=False))
        refusals = [why for why, _ in said]
        for why, delay in said[self._said :]:
            if why not in refusals[: self._said]:
                passes = " (an error of the batch system that passes)" if temporary(why) else ""
                log(
                    f"{self.label}: {subs.command} refused a worker job: {why}{passes};"
                    f" asked again in {delay:.0f} s"
                )
        self._said = len(said)
        cancelled = subs.strays.cancelled
        while cancelled:
            log(
                f"{self.label}: {subs.command} took job {cancelled.pop(0)} after it timed out,"
                " once the job had been asked for again: cancelled (nobody counts it)"
            )
        self._pending(now, log)
        return None

    def _pending(self, now: float, log: Callable[[str], None]) -> None:
        workers = list(self.cluster.scheduler_info.get("workers", {}).values())
        names = {str(w.get("name")) for w in workers}
        # A job of several worker processes names them <job>-<i>.
        waiting, oldest = self.submissions.connected({n.rsplit("-", 1)[0] for n in names} | names)
        if workers or oldest is None or now - oldest < PENDING_AFTER:
            return
        if now - self._pending_said < PENDING_EVERY:
            return
        self._pending_said = now
        log(
            f"Waiting for workers: {waiting} job(s) taken by {self.submissions.command}, the"
            f" first {(now - oldest) / 60:.0f} min ago, not started yet (queued, or failed"
            f" at start: see the queue and {self.logs})"
        )
