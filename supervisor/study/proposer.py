"""The proposer: a process beside the driver that computes the sampler's proposals.

With thousands of workers a model-based sampler is the driver's largest cost per trial
(TPE: ~5 ms of a ~6 ms turn at 10,000 workers), and the driver runs one Python thread:
results wait while it proposes. The proposer runs the campaign's sampler, built as the
driver builds it, in a process of its own on a read-only view of the same study
(it opens the storage itself: the journal file, or the database). Each proposal reads
the study as it is then, so it is computed with every result the driver has told; the
proposals the driver holds but has not used yet are modelled as pending trials (constant
liars), as the trials in flight are. Nothing is written: a proposal becomes a trial only
when the driver asks one (``supervisor.study.proposals``), so proposals left over at the
end, or lost with the process, cost nothing.

The protocol, over a ``multiprocessing`` pipe: the driver sends ``(target, gone)``: keep
``target`` proposals ready, and forget the ids in ``gone`` (used, so now in the study, or
dropped); the proposer sends ``READY`` once it has opened the study, then each
proposal as a ``Proposal``. ``None`` stops it. When several are wanted, up to ``BATCH``
are computed on one read of the study (the read replays what the driver wrote since).
While the sampler is in its random start-up the proposer sends nothing (the driver draws
those trials itself, a draw costs nothing) and looks again every ``IDLE_WAIT`` seconds.
"""

from __future__ import annotations

import datetime
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.config.history import StudyView

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from supervisor.config.experiment import Experiment

# Proposal ids number the proposer's own pending trials for the sampler (its per-trial
# seed, TPE's memo of observations): far above any trial number, newest last.
FIRST_ID = 2**40
READY = "ready"  # sent once the study is open
BATCH = 8  # proposals computed on one read of the study
IDLE_WAIT = 0.2  # seconds between looks while the sampler is still in its start-up


@dataclass(frozen=True)
class Proposal:
    id: int
    space: dict[str, BaseDistribution]  # the relative search space it was proposed for
    params: dict[str, Any]
    seconds: float  # what computing it took


class _NoWrites:
    """A storage whose trial attribute writes are dropped: TPE's constant liar stores a
    proposal's parameters on its trial, which for a proposal does not exist."""

    def __init__(self, storage: Any) -> None:
        self._inner = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        pass


class ReadOnlyStudy(StudyView):
    """The study as it is now, whose sampler's writes go nowhere."""

    def __init__(self, study: optuna.Study) -> None:
        import supervisor.optuna_internals as internals

        super().__init__(study, study.get_trials(deepcopy=False))
        self._storage = _NoWrites(internals.study_storage(study))


def pending(number: int, params: dict[str, Any], space: dict[str, BaseDistribution]) -> Any:
    """A proposal as the sampler models it: a running trial with these parameters."""
    from optuna.trial import FrozenTrial, TrialState

    now = datetime.datetime.now()
    return FrozenTrial(
        number, TrialState.RUNNING, None, now, None, dict(params),
        {k: space[k] for k in params}, {}, {}, {}, number,
    )  # fmt: skip


def propose(
    study: optuna.Study | ReadOnlyStudy,
    sampler: Any,
    number: int,
    outstanding: list[FrozenTrial],
) -> tuple[dict[str, BaseDistribution], dict[str, Any]]:
    """One proposal of ``sampler`` for a trial numbered ``number`` (its seed), with the
    proposals in ``outstanding`` modelled as pending; ``study``: the study, or a view of
    it read for several proposals."""
    view = study if isinstance(study, ReadOnlyStudy) else ReadOnlyStudy(study)
    trial = pending(number, {}, {})
    sampler.extra_pending = tuple(outstanding)
    try:
        sampler.before_trial(view, trial)
        space = sampler.infer_relative_search_space(view, trial)
        params = sampler.sample_relative(view, trial, space) if space else {}
    finally:
        sampler.extra_pending = ()
    return space, params


def serve(conn: Connection, storage_url: str, exp: Experiment) -> None:
    """The proposer process (its target: ``multiprocessing.Process``). It ends when told,
    or when the driver is gone (killed: its end of the pipe closes), without a trace."""
    with suppress(EOFError, BrokenPipeError, ConnectionResetError):
        _serve(conn, storage_url, exp)


def _serve(conn: Connection, storage_url: str, exp: Experiment) -> None:
    import optuna

    from supervisor.config.samplers import make_sampler
    from supervisor.study.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(exp.sampler, exp.sampler_options, exp.seed, grid=exp.grid())
    study = optuna.load_study(
        study_name=exp.study_name, storage=open_storage(storage_url), sampler=sampler
    )
    conn.send(READY)
    outstanding: dict[int, FrozenTrial] = {}  # sent, not yet used or dropped
    target, number = 0, FIRST_ID
    while True:
        while len(outstanding) >= target or conn.poll():  # wait for wishes when served
            message = conn.recv()
            if message is None:
                return
            target, gone = message
            for i in gone:
                outstanding.pop(i, None)
        view = ReadOnlyStudy(study)  # one read of the study for the proposals wanted now
        for _ in range(min(BATCH, target - len(outstanding))):
            start = time.perf_counter()
            number += 1  # a new number per proposal: the sampler keeps what it read per number
            space, params = propose(view, sampler, number, list(outstanding.values()))
            if not params:  # the sampler's start-up (random): the driver draws those itself
                conn.poll(IDLE_WAIT)
                break
            conn.send(Proposal(number, space, params, time.perf_counter() - start))
            outstanding[number] = pending(number, params, space)
