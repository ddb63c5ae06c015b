"""The channel between a running trial and the driver, through Dask (no shared database).

Worker -> driver: when a trial starts on a worker, and after each of its epochs, the
worker logs a Dask event (``Worker.log_event``) on the driver's topic; the scheduler
forwards it to the driver, which subscribed to that topic (``Client.subscribe_topic``).
The driver alone reports to the study.

Driver -> worker: when the study has a pruner, the driver answers every epoch with a
verdict (continue or prune), sent with ``Client.run`` to the trial's worker, batched per
worker by a background thread so the driver's loop never waits on a worker. The trial
waits for the verdict at the epoch boundary for at most ``spec.verdict_timeout`` seconds
(a late verdict applies at the next boundary), so a pruned trial stops right after the
epoch the pruner judged, and its worker takes the next trial at once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client, Future

    from supervisor.execution.trial import TrialSpec

logger = logging.getLogger(__name__)

TOPIC_PREFIX = "supervisor-trials-"
VERDICT_TIMEOUT = 5.0  # seconds an epoch waits for the driver's verdict, pruned studies only
STREAM_AFTER = 1.0  # seconds a trial runs before it streams to an unpruned driver

# (study name, trial number, epoch, prune)
Verdict = tuple[str, int, int, bool]


def topic(driver_id: str) -> str:
    """One topic per driver: several drivers may share a scheduler."""
    return TOPIC_PREFIX + driver_id


# -- worker side ------------------------------------------------------------------------


def publish(spec: TrialSpec, msg: dict[str, Any], worker: Any = None) -> None:
    """Send ``msg`` about ``spec``'s trial to its driver through ``worker`` (default: the
    Dask worker running this task); a no-op outside a Dask worker.

    Losing a message costs the driver a live update, never the trial: the result still
    carries the whole history.
    """
    if spec.events_topic is None:
        return
    if worker is None:
        worker = current_worker()
    if worker is None:
        return
    try:
        worker.log_event(
            spec.events_topic, {"study": spec.study_name, "trial": spec.trial_number, **msg}
        )
    except Exception as exc:
        logger.warning("trial %d: could not stream to the driver: %s", spec.trial_number, exc)


def current_worker() -> Any:
    """The Dask worker running this task, or None."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


class TrialStream:
    """What a running trial tells its driver: where it started, then each epoch.

    A trial shorter than ``STREAM_AFTER`` seconds sends nothing while it runs (unless the
    driver judges its epochs, ``spec.verdict_timeout`` > 0): its result carries the same,
    and for sub-second trials the two messages cost more than the trial. A longer one
    announces itself ``STREAM_AFTER`` seconds in, from a timer, even mid-epoch.
    """

    def __init__(self, spec: TrialSpec, start: dict[str, Any]) -> None:
        self.spec = spec
        self.start = start
        self.began = time.monotonic()
        self.judged = spec.verdict_timeout > 0
        self._worker = current_worker()  # the timer's thread is not the task's
        self._announced = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if self.judged:
            self._announce()
        elif spec.events_topic is not None and self._worker is not None:
            self._timer = threading.Timer(STREAM_AFTER, self._announce)
            self._timer.daemon = True
            self._timer.start()

    def _announce(self) -> None:
        with self._lock:  # held while sending: an epoch never overtakes the start
            if not self._announced:
                self._announced = True
                publish(self.spec, self.start, self._worker)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.judged or time.monotonic() - self.began >= STREAM_AFTER:
            self._announce()
            msg = {"kind": "epoch", "epoch": epoch, "metrics": metrics}
            publish(self.spec, msg, self._worker)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class TrialControl:
    """A trial running in this worker process and the verdicts its driver sent for it."""

    def __init__(self, spec: TrialSpec) -> None:
        self.spec = spec
        self.stop = False  # a prune verdict arrived: stop at the next epoch boundary
        self._verdicts: set[int] = set()
        self._closed = False
        self._cond = threading.Condition()

    def deliver(self, epoch: int, prune: bool) -> None:
        with self._cond:
            self._verdicts.add(epoch)
            self.stop = self.stop or prune
            self._cond.notify_all()

    def close(self) -> None:
        """No more waiting (the trial is being cancelled)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def verdict(self, epoch: int) -> bool:
        """True when the trial must stop after ``epoch``. Waits for the driver's verdict
        on it when the driver prunes (``spec.verdict_timeout`` > 0)."""
        timeout = self.spec.verdict_timeout
        with self._cond:
            if timeout > 0:
                self._cond.wait_for(
                    lambda: self.stop or self._closed or epoch in self._verdicts, timeout
                )
            return self.stop


_controls: dict[tuple[str, int], TrialControl] = {}
_controls_lock = threading.Lock()


@contextlib.contextmanager
def running(spec: TrialSpec) -> Iterator[TrialControl]:
    """Register ``spec``'s trial in this process while it runs, to receive verdicts."""
    control = TrialControl(spec)
    key = (spec.study_name, spec.trial_number)
    with _controls_lock:
        _controls[key] = control
    try:
        yield control
    finally:
        with _controls_lock:
            if _controls.get(key) is control:
                del _controls[key]
        control.close()


def deliver_verdicts(verdicts: list[Verdict]) -> int:
    """Run on workers by the driver (``Client.run``): hand each verdict to its trial if it
    runs in this process. Returns how many found their trial."""
    found = 0
    for study, number, epoch, prune in verdicts:
        with _controls_lock:
            control = _controls.get((study, int(number)))
        if control is not None:
            control.deliver(int(epoch), bool(prune))
            found += 1
    return found


def cancel(study: str, numbers: list[int]) -> None:
    """These trials are being cancelled: none of them waits for a verdict any more."""
    with _controls_lock:
        controls = [c for (s, n), c in _controls.items() if s == study and n in numbers]
    for control in controls:
        control.close()


# -- driver side ------------------------------------------------------------------------

# A finished trial's result, or why there is none (its worker or node went away).
Outcome = Any  # TrialResult | BaseException


FETCH_WAIT = 2.0  # seconds the driver waits for a finished trial's result from its worker
LATE_RETRY = 30.0  # seconds before a result that did not come is asked for again


def fetch_done(futures: Iterable[Future], late: dict[str, float]) -> list[tuple[Future, Outcome]]:
    """The outcomes of the finished ``futures``, fetched now (a round trip to each one's
    worker), ``FETCH_WAIT`` seconds each at most: a worker frozen (a suspended job) or
    hung after its trial ended held the driver for as long. One that does not come is
    left to the collector and asked again after ``LATE_RETRY`` seconds (``late``: key ->
    when)."""
    now = time.monotonic()
    out: list[tuple[Future, Outcome]] = []
    for future in futures:
        if not future.done() or late.get(str(future.key), 0.0) > now:
            continue
        late.pop(str(future.key), None)  # asked again now: forgotten, unless late again
        try:
            out.append((future, future.result(timeout=FETCH_WAIT)))
        except TimeoutError as exc:
            if future.status == "error":  # the task's own error, kept by the scheduler
                out.append((future, exc))
            else:
                late[str(future.key)] = time.monotonic() + LATE_RETRY
        except Exception as exc:
            out.append((future, exc))
    return out


class DriverChannel:
    """The driver's inbox (trial events and finished futures, in arrival order) and its
    outbox of verdicts."""

    def __init__(self, client: Client, topic_name: str) -> None:
        from distributed import as_completed

        self.client = client
        self.topic = topic_name
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._outbox: queue.Queue[tuple[str | None, Verdict] | None] = queue.Queue()
        client.subscribe_topic(topic_name, self._on_event)
        self._sender = threading.Thread(target=self._send_loop, name="verdicts", daemon=True)
        self._sender.start()
        # Results are fetched on the client's event loop as trials finish (Dask's
        # as_completed), not by a blocking round trip per trial from the driver's thread:
        # that halves the supervisor's own cost on short trials.
        self._completed = as_completed(loop=client.loop, with_results=True, raise_errors=False)
        self._watching = threading.Event()
        self._closed = False
        self._collector = threading.Thread(target=self._collect, name="results", daemon=True)
        self._collector.start()

    def _on_event(self, event: tuple[float, Any]) -> None:
        # Called in the client's event loop: only hand over, the driver's thread does the work.
        self.inbox.put(("event", event[1]))

    def watch(self, future: Future) -> None:
        self._completed.add(future)
        self._watching.set()

    def _collect(self) -> None:
        try:
            while not self._closed:
                for future, result in self._completed:  # ends whenever nothing is in flight
                    if future.status == "error":  # (type, exception, traceback)
                        result = result[1]
                    self.inbox.put(("done", (future, result)))
                self._watching.wait(timeout=0.5)
                self._watching.clear()
        except Exception as exc:  # the client closed under it: the driver fetches the rest
            logger.debug("results collector stopped: %s", exc)

    def receive(self, timeout: float) -> list[tuple[str, Any]]:
        """What arrived: waits up to ``timeout`` for the first item, then takes the rest."""
        try:
            items = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return items

    def send_verdict(self, worker: str | None, verdict: Verdict) -> None:
        self._outbox.put((worker, verdict))

    def _send_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            batch = [item]
            with contextlib.suppress(queue.Empty):
                while (more := self._outbox.get_nowait()) is not None:
                    batch.append(more)
                self._outbox.put(None)  # the close request that ended the batch
            per_worker: dict[str | None, list[Verdict]] = {}
            for worker, verdict in batch:
                per_worker.setdefault(worker, []).append(verdict)
            for worker, verdicts in per_worker.items():
                try:  # an unknown worker (start not seen yet): every worker looks
                    workers = [worker] if worker else None
                    # Bounded: a frozen worker (a suspended job) held every later verdict,
                    # and each judged epoch everywhere waited VERDICT_TIMEOUT for its own.
                    self.client.run(
                        deliver_verdicts,
                        verdicts,
                        workers=workers,
                        on_error="ignore",
                        callback_timeout=VERDICT_TIMEOUT,
                    )
                except Exception as exc:  # a worker that left has no trial to stop
                    logger.debug("verdicts to %s not delivered: %s", worker, exc)

    def close(self) -> None:
        self._closed = True
        self._watching.set()
        self._outbox.put(None)
        self._sender.join(timeout=10)
        self._collector.join(timeout=1)  # a daemon: a future that never ends must not hold us
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
