"""The driver's side of the proposer (``supervisor.study.proposer``): proposals computed
in another process, taken when the driver asks a trial.

``FedSampler`` stands in for the study's sampler while the driver runs: for a trial's
relative search space (every parameter of a fixed space) it hands out a ready proposal,
so the driver's ask costs a storage write instead of a model fit; when none is ready (the
proposer is starting, still in its random start-up, behind, or gone) the sampler itself
proposes, as without a proposer. Parameters outside the relative space (conditional
ones) and re-runs of queued trials go to the sampler as before.

How many proposals are kept ready: as many as the driver asks while one is computed
(its ask rate times the proposer's seconds per proposal, twice over, plus one), plus what
its bursts of asks take (a fill after many results): one more after each ask that found
none ready, one fewer after ``HITS_TO_SHRINK`` asks that left some; at most
``MAX_READY``. Few are ready, so each was computed with nearly every result told so
far; one older than ``STALE_S`` is dropped unused. Proposals are not trials: unused ones
cost nothing.

A campaign gets a proposer (``proposer=None``, the default) when it has at least
``PROPOSER_SLOTS`` slots, a storage other processes can read (the journal file or a
database, not Optuna's in-memory one) and a sampler that models a bounded history (TPE,
GP; ``supervisor.config.history``). Its proposals depend on when results arrive, so a
campaign with a proposer is not reproducible trial by trial from its seed; one with fewer
slots, or ``proposer=False``, is.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler

from supervisor.errors import UserError

if TYPE_CHECKING:
    import optuna

    from supervisor.config.experiment import Experiment
    from supervisor.study.proposer import Proposal

PROPOSER_SLOTS = 256
MAX_READY = 64
STALE_S = 2.0
HITS_TO_SHRINK = 8  # hits with proposals to spare before one fewer is kept for bursts
STOP_TIMEOUT_S = 5.0  # to stop the process at the end, then it is killed


class Proposals:
    """The proposer process and the proposals it sent that are not used yet."""

    def __init__(self, storage_url: str, exp: Experiment) -> None:
        import multiprocessing

        from supervisor.study.proposer import serve

        context = multiprocessing.get_context("spawn")  # no copy of the driver's threads
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, storage_url, exp), name="supervisor-proposer", daemon=True
        )
        self.process.start()
        child.close()
        self.ready: deque[tuple[float, Proposal]] = deque()  # (received at, proposal)
        self.gone: list[int] = []  # ids used or dropped, not yet told to the proposer
        self.alive = True
        self.seconds = 0.01  # per proposal, a moving average of what the proposer reports
        self.interval = 1.0  # between asks, a moving average
        self._last_ask = time.monotonic()
        self._target = 0
        self.taken = self.missed = self.dropped = self.received = 0
        self.repeats = 0  # dropped: a trial had that configuration by the time it was taken
        self._created = time.monotonic()
        self.burst = 0  # ready beyond the steady rate, for the driver's bursts of asks
        self._hits = 0
        self.started: float | None = None  # seconds the process took to open the study

    def wait_started(self, timeout: float) -> bool:
        """Wait until the process has opened the study (for tests and measurements: the
        driver never waits, it proposes itself meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.started is None and self.alive and time.monotonic() < deadline:
            self._conn.poll(0.05)
            self._receive()
        return self.started is not None

    def take(self, tried: Callable[[dict[str, Any]], bool] | None = None) -> Proposal | None:
        """The oldest ready proposal (None: none ready), and wishes for the next ones.
        ``tried``: whether a configuration is a trial already. The proposer read the study
        before the driver's latest trials, which the driver's own sampler may have
        proposed meanwhile: such a proposal is dropped, not trained (or told) twice."""
        now = time.monotonic()
        self.interval = 0.9 * self.interval + 0.1 * (now - self._last_ask)
        self._last_ask = now
        self._receive()
        while self.ready and now - self.ready[0][0] > STALE_S:
            self.gone.append(self.ready.popleft()[1].id)
            self.dropped += 1
        while self.ready and tried is not None and tried(self.ready[0][1].params):
            self.gone.append(self.ready.popleft()[1].id)
            self.repeats += 1
        found = None
        if self.ready:
            found = self.ready.popleft()[1]
            self.gone.append(found.id)
            self.taken += 1
            self._hits += 1
            if self._hits % HITS_TO_SHRINK == 0 and self.ready:  # more than bursts take
                self.burst = max(0, self.burst - 1)
        elif self.alive:
            self.missed += 1
            if self.received:  # past its start-up, asks come in bursts: keep more ready
                self.burst = min(MAX_READY, self.burst + 1)
        self._wish()
        return found

    def _receive(self) -> None:
        try:
            while self.alive and self._conn.poll():
                proposal: Proposal | str = self._conn.recv()
                if isinstance(proposal, str):  # READY
                    self.started = time.monotonic() - self._created
                    continue
                self.ready.append((time.monotonic(), proposal))
                self.received += 1
                self.seconds = 0.8 * self.seconds + 0.2 * proposal.seconds
        except (EOFError, OSError):  # the process is gone: the sampler proposes alone
            self.alive = False

    def _wish(self) -> None:
        target = math.ceil(2 * self.seconds / max(self.interval, 1e-4)) + 1 + self.burst
        target = min(MAX_READY, target)
        if not self.alive or (target == self._target and not self.gone):
            return
        try:
            self._conn.send((target, self.gone))
        except (BrokenPipeError, OSError):
            self.alive = False
            return
        self._target, self.gone = target, []

    def close(self) -> None:
        with suppress(BrokenPipeError, OSError):
            self._conn.send(None)
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()


class FedSampler(BaseSampler):
    """The study's sampler, with proposals from ``Proposals`` for relative spaces."""

    def __init__(
        self,
        inner: BaseSampler,
        proposals: Proposals,
        tried: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.inner, self.proposals, self.tried = inner, proposals, tried
        self._current: tuple[int, Proposal] | None = None  # (trial number, its proposal)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        found = self.proposals.take(self.tried)
        if found is None:
            return self.inner.infer_relative_search_space(study, trial)
        self._current = (trial.number, found)
        return dict(found.space)

    def sample_relative(
        self, study: Any, trial: Any, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        current, self._current = self._current, None
        number, found = current if current is not None else (None, None)
        if found is not None and number == trial.number and found.space == search_space:
            return dict(found.params)
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        return self.inner.sample_independent(study, trial, name, dist)

    def before_trial(self, study: Any, trial: Any) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def supported(study: optuna.Study, storage_url: str | None) -> str | None:
    """Why the study cannot have a proposer (None: it can)."""
    if storage_url is None or storage_url == "memory":
        return "its storage is in this process's memory"
    if getattr(study.sampler, "history_limit", None) is None:
        return "its sampler does not model a bounded history (tpe, gp and turbo do)"
    return None


@contextmanager
def proposer(
    study: optuna.Study,
    exp: Experiment,
    storage_url: str | None,
    slots: int,
    wanted: bool | None,
    tried: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[Proposals | None]:
    """While the driver runs: the study's sampler fed by a proposer where ``wanted``
    (None: where the campaign has ``PROPOSER_SLOTS`` slots or more and it is supported);
    ``tried``: whether a configuration is a trial already (``Proposals.take``)."""
    why = supported(study, storage_url)
    if wanted and why is not None:
        raise UserError(f"proposer: not for this campaign: {why}")
    if why is not None or wanted is False or (wanted is None and slots < PROPOSER_SLOTS):
        yield None
        return
    assert storage_url is not None
    proposals = Proposals(storage_url, exp)
    inner = study.sampler
    study.sampler = FedSampler(inner, proposals, tried)
    try:
        yield proposals
    finally:
        study.sampler = inner
        proposals.close()
