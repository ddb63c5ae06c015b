"""Trials run in a child process of the Dask worker, kept across trials.

Why not in the worker itself:

* TensorFlow keeps about 4 MB per model it traced, whatever Keras' ``clear_session``
  does (TF 2.21; eager and JAX do not leak): a worker would grow without bound over a
  long campaign. The child is replaced once it has grown by ``growth_limit_mb``; the
  next trial pays one framework import and one data load.
* A running Dask task cannot be stopped; a child process can be killed. A trial over
  its time limit or over the worker's memory limit is killed alone, recorded as a model
  failure with its cause, and the worker's slot is free at once.
* A trial that crashes the interpreter (segfault, ``os._exit``) takes down only the
  child. It is reported as an infrastructure failure, so the driver runs it again and
  blames it after repeated deaths, as with a dead worker.

Protocol: length-prefixed pickles. The parent sends ``("trial", spec)`` on the child's
stdin; the child answers on its original stdout with ``("epoch", epoch, metrics)`` after
every epoch, each answered by the parent with ``("verdict", stop)`` (the driver's
pruning decision, see ``supervisor.execution.channel``), and finally ``("result", result)``.
Anything else the child prints goes to stderr, which the parent forwards to its own and
whose last lines it keeps for the record of a child that dies. It dies with its parent
(``PR_SET_PDEATHSIG``), so no orphan keeps training.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import weakref

from supervisor.execution.output_tail import OutputTail
from supervisor.execution.trial import (
    MEMORY_LIMIT,
    TIME_LIMIT,
    EpochHook,
    TrialResult,
    TrialSpec,
    model_failure,
)
from supervisor.execution.wire import receive, send

GROWTH_ENV = "SUPERVISOR_TRIAL_GROWTH_MB"
DEFAULT_GROWTH_MB = 1024.0
POLL_SECONDS = 0.5


class TrialHost:
    """One child process that runs this thread's trials, one at a time."""

    def __init__(self, growth_limit_mb: float | None = None) -> None:
        self.growth_limit_mb = growth_limit_mb or float(
            os.environ.get(GROWTH_ENV, DEFAULT_GROWTH_MB)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.baseline_mb: float | None = None  # child RSS after its first trial
        self.started = 0  # children started, for tests and logs
        self.current: TrialSpec | None = None  # the trial running now
        self.tail: OutputTail | None = None  # the child's stderr, forwarded and kept
        # Set by ``cancel``: True (interrupted), or the model failure it ends as.
        self.cancelled: bool | tuple[str, str] = False
        _hosts.add(self)

    def run(
        self,
        spec: TrialSpec,
        memory_limit_mb: float | None = None,
        on_epoch: EpochHook | None = None,
    ) -> TrialResult:
        self.current, self.cancelled = spec, False
        if self.tail is not None:
            self.tail.clear()
        try:
            return self._run(spec, memory_limit_mb, on_epoch)
        finally:
            self.current = None

    def cancel(self, why: tuple[str, str] | None = None) -> None:
        """Stop the running trial now (called from another thread: the driver gave up
        on it, e.g. Ctrl-C). The waiting ``run`` then returns an interrupted result, or
        with ``why`` (error type, message) a model failure."""
        self.cancelled = why or True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _run(
        self, spec: TrialSpec, memory_limit_mb: float | None, on_epoch: EpochHook | None
    ) -> TrialResult:
        proc = self._child()
        assert proc.stdin is not None and proc.stdout is not None
        to_child, from_child = proc.stdin.fileno(), proc.stdout.fileno()
        try:
            send(to_child, ("trial", spec))
        except OSError:
            return self._died(spec, time.time())
        started = time.time()
        deadline = started + spec.time_limit if spec.time_limit else None
        while True:
            readable, _, _ = select.select([from_child], [], [], POLL_SECONDS)
            if readable:
                try:
                    message = receive(from_child)
                    if message[0] == "result":
                        result: TrialResult = message[1]
                        self._recycle_if_grown(result)
                        return result
                    stop = on_epoch(message[1], message[2]) if on_epoch is not None else False
                    send(to_child, ("verdict", stop))
                except (EOFError, pickle.UnpicklingError, OSError):
                    return self._died(spec, started)
            # Checked after every message too: epochs may arrive faster than the poll.
            if proc.poll() is not None:
                return self._died(spec, started)
            if deadline is not None and time.time() > deadline:
                self.stop()
                return model_failure(
                    spec,
                    started,
                    TIME_LIMIT,
                    f"trial ran over its time limit of {spec.time_limit:g} s",
                )
            if memory_limit_mb is not None and (rss := process_rss_mb(proc.pid)) > memory_limit_mb:
                self.stop()
                return model_failure(
                    spec,
                    started,
                    MEMORY_LIMIT,
                    f"trial used {rss:.0f} MB, over the worker's limit of "
                    f"{memory_limit_mb:.0f} MB",
                )

    def stop(self) -> None:
        proc, self.proc, self.baseline_mb = self.proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _child(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            from supervisor.execution.node import child_environment

            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.execution.trial_host"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,  # the protocol reads and writes the descriptors itself
                env=child_environment(),  # it finds the modules its worker finds
            )
            assert self.proc.stderr is not None
            self.tail = OutputTail(self.proc.stderr)
            self.started += 1
        return self.proc

    def _recycle_if_grown(self, result: TrialResult) -> None:
        rss = float(result.extra.get("rss_mb", 0.0))
        if self.baseline_mb is None:
            self.baseline_mb = rss
        elif rss - self.baseline_mb > self.growth_limit_mb:
            result.extra["host_recycled_mb"] = rss
            self.stop()

    def _died(self, spec: TrialSpec, started: float) -> TrialResult:
        if self.cancelled:
            self.stop()
            if isinstance(self.cancelled, tuple):  # the driver's verdict on the trial
                return model_failure(spec, started, *self.cancelled)
            result = model_failure(spec, started, "Interrupted", "stopped by the driver")
            result.failure = "interrupted"
            return result
        code = None
        if self.proc is not None:
            # Its pipe closed a moment before the exit status is there.
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=5)
        printed = self.tail.last_lines() if self.tail is not None else ""
        self.stop()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        last = f"; its last output:\n{printed}" if printed else ""
        return TrialResult(
            trial_number=spec.trial_number,
            status="failed",
            failure="infrastructure",
            error_type="TrialProcessDied",
            error=f"the trial's process died ({how}){last}",
            started=started,
            finished=time.time(),
        )


def process_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


_local = threading.local()
_hosts: weakref.WeakSet[TrialHost] = weakref.WeakSet()


def cancel_hosts(
    study_name: str, numbers: list[int], why: tuple[str, str] | None = None
) -> list[int]:
    """Kill the trial processes of this worker process that run these trials (``why``:
    see ``TrialHost.cancel``); the numbers it stopped."""
    stopped = []
    for h in list(_hosts):
        spec = h.current
        if spec is not None and spec.study_name == study_name and spec.trial_number in numbers:
            h.cancel(why)
            stopped.append(spec.trial_number)
    return stopped


def host() -> TrialHost:
    """This thread's trial host (a Dask worker runs one trial per thread)."""
    if not hasattr(_local, "host"):
        _local.host = TrialHost()
    return _local.host


# -- the child --------------------------------------------------------------------------


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent's kill on shutdown still applies


def serve(inbox: int, outbox: int) -> None:
    from supervisor.execution.execute import execute

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        send(outbox, ("epoch", epoch, metrics))
        return bool(receive(inbox)[1])  # the parent's ("verdict", stop)

    while True:
        try:
            _, spec = receive(inbox)
        except EOFError:
            return
        send(outbox, ("result", execute(spec, on_epoch)))


def main() -> None:
    import faulthandler

    _die_with_parent()
    faulthandler.enable()  # a fatal signal prints the Python stack: the death's cause
    # Its worker stops it (SIGKILL) or it dies with it: a Ctrl-C or a batch system's
    # SIGTERM to every process would end the trial before the driver records it as
    # interrupted (a lost attempt, and a traceback on the terminal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    outbox = os.dup(1)
    os.dup2(2, 1)  # prints of frameworks and models must not corrupt the protocol
    serve(sys.stdin.fileno(), outbox)


if __name__ == "__main__":
    main()
