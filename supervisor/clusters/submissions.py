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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

ASK_AGAIN_AFTER = 60.0  # seconds a refused job's place is held before it is asked again
PENDING_AFTER = 60.0  # no worker this long after a job was taken: say it waits
PENDING_EVERY = 300.0  # and say it again this often
CHECK_EVERY = 1.0  # the driver calls every 0.5 s; the cluster's state is read this often
SHOWN = 300  # characters of the batch system's message at most


class Refused(RuntimeError):
    """A worker job the batch system did not take (recorded; ``Watch`` says it)."""


def reason(exc: BaseException) -> str:
    """The batch system's words from dask-jobqueue's error: the submit command's stderr
    (else its stdout) on one line, with its exit code."""
    text = str(exc)
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

    def __init__(self, command: str) -> None:
        self.command = command  # the submit command, as the messages name it
        self.accepted = 0
        self.submitting = 0  # submissions not answered yet (a refusal may come first)
        self.waiting: dict[str, float] = {}  # taken jobs -> when, until a worker is seen
        self.refusals: list[str] = []  # the batch system's messages, in order
        self._refused: dict[str, float] = {}  # refused jobs -> when, until asked again
        self._lock = threading.Lock()

    def submit(self) -> None:
        with self._lock:
            self.submitting += 1

    def took(self, name: str, now: float) -> None:
        with self._lock:
            self.submitting -= 1
            self.accepted += 1
            self.waiting[name] = now

    def refused(self, name: str, why: str, now: float) -> None:
        with self._lock:
            self.submitting -= 1
            self.refusals.append(why)
            self._refused[name] = now

    def none_taken(self) -> str | None:
        """The first refusal when every submission so far, all answered, was refused."""
        with self._lock:
            if self.refusals and not self.accepted and not self.submitting:
                return self.refusals[0]
            return None

    def to_ask_again(self, now: float) -> list[str]:
        """Refused jobs whose place was held long enough: to drop, so they are asked again."""
        with self._lock:
            due = [n for n, t in self._refused.items() if now - t >= ASK_AGAIN_AFTER]
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
    raises ``Refused``, which the cluster (``supervisor.clusters.adaptive``) keeps quiet."""

    from distributed.core import Status

    async def start(self: Any) -> None:
        submissions.submit()
        try:
            await job_cls.start(self)
        except Exception as exc:
            submissions.refused(str(self.name), reason(exc), time.time())
            self.status = Status.failed  # as the cluster's close expects of such a job
            raise Refused(reason(exc)) from exc
        submissions.took(str(self.name), time.time())

    return type(job_cls.__name__, (job_cls,), {"start": start})


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
        first = subs.none_taken()
        if first is not None:
            return f"{self.label}: {subs.command} refuses the worker jobs: {first}"
        refusals = list(subs.refusals)
        for why in refusals[self._said :]:
            if why not in refusals[: self._said]:
                log(
                    f"{self.label}: {subs.command} refused a worker job: {why};"
                    f" asked again in {ASK_AGAIN_AFTER:.0f} s"
                )
        self._said = len(refusals)
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
