"""The driver: the only code that touches the Study. An asynchronous ask/tell loop.

Every worker slot stays busy (plus trials queued ahead when trials are short,
``supervisor.study.prefetch``): a finished trial is replaced at once (no batch barrier),
at scale with a proposal computed beside the driver (``supervisor.study.proposals``).
Results are told in the order they finish. Stops when the study holds the budget of
finished trials (waiting for other drivers' trials when they fill it, and taking over
those of a driver that died), at the timeout or once ``budget.target`` / ``patience`` say
so (``supervisor.study.stopping``; no new trials, running ones finish, queued ones are
cancelled), on a signal (Ctrl-C, SIGTERM, SIGUSR1: running trials are cancelled,
recorded as interrupted and queued again; ``supervisor.study.signals``), when the
run's first trials all fail the same way (``supervisor.study.failfast``), or when its
cluster says no trial can run (``watch``: a batch system refusing every worker job).

Workers stream each trial's start and epochs (``supervisor.study.inflight``); the pruner
judges each epoch. How each trial ended, what is re-run, checkpoints: ``study.recorder``.

Duplicates (``supervisor.study.index``): a configuration any driver of the study already
completed is not trained again: it is told with that trial's values and counts toward the
budget (the sampler chose it knowing the result). One proposed while its twin is still
training (here or under another driver) waits for the twin and is told with its values
too, but does not count. Both carry the user attributes ``duplicate_of`` and
``duplicate_known``. ``retrain_duplicates: true`` turns this off; re-runs always train.

Placement (``supervisor.study.placement``): only workers expected to outlive a trial get it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import supervisor.optuna_internals as internals
from supervisor.config.params import suggest
from supervisor.config.pruner_reach import campaign_notes
from supervisor.execution import channel
from supervisor.execution.trial import TrialResult
from supervisor.execution.worker import cancel_trials
from supervisor.study import attrs, deadline, feasibility, recovery, retry
from supervisor.study.events import CampaignListener, ClusterWatch, Silent
from supervisor.study.index import ParamKey, StudyIndex, param_key
from supervisor.study.inflight import InFlight, Running
from supervisor.study.launches import Launches
from supervisor.study.outcomes import CANCELLING, StopReason, Summary, result_attrs, stop_cause
from supervisor.study.placement import Placement, begun_keys, tell_workers
from supervisor.study.prefetch import Prefetch
from supervisor.study.proposals import Proposals, proposer
from supervisor.study.recorder import Recorder
from supervisor.study.signals import stop_on_signals
from supervisor.study.stopping import Stopping, StopRule
from supervisor.study.storage import StorageError, batch, flush, set_user_attrs

if TYPE_CHECKING:
    import optuna
    from distributed import Client, Future

    from supervisor.config.experiment import Experiment

__all__ = ["Driver", "StopReason", "Summary", "param_key"]

Submitted = Literal["submitted", "parked", "told", "failed", "surplus"]


class Driver:
    def __init__(
        self,
        exp: Experiment,
        study: optuna.Study,
        client: Client,
        *,
        slots: int,
        threads: int = 1,
        prefetch: int | None = None,
        display: CampaignListener | None = None,
        run_dir: str | None = None,
        max_attempts: int = retry.MAX_ATTEMPTS,
        resources: dict[str, float] | None = None,
        storage_url: str | None = None,
        proposer: bool | None = None,
    ) -> None:
        self.exp, self.study, self.client = exp, study, client
        # A K-rank trial runs K processes (each with `threads`) on its worker's node: it
        # takes K slots, and a queued task would start at once on an idle worker.
        self.slots = max(1, slots // exp.ranks)
        self.threads = threads
        # Trials queued beyond the slots, sized from trial durations (none for K ranks).
        self.prefetch = Prefetch(self.slots, 0 if exp.ranks > 1 else prefetch)
        self.display: CampaignListener = display or Silent()
        self.run_dir = run_dir
        self.rec = Recorder(exp, study, self.display, run_dir, max_attempts)
        # Each trial keeps its predictions when the campaign builds ensembles from them.
        self.save_outputs = exp.ensemble is not None
        self.placement = Placement(client)
        self.launches = Launches(self)
        self.resources = resources  # Dask resources each trial needs (e.g. a GPU)
        self.storage_url, self.proposer = storage_url, proposer  # study.proposals
        self.proposals: Proposals | None = None
        self.driver_id = recovery.new_driver_id()
        self.index = StudyIndex(self.driver_id, twins=not exp.retrain_duplicates)
        # Another driver's trial -> this driver's twins of it, waiting for its result.
        self.waiting: dict[int, list[optuna.Trial]] = {}
        self._ready: list[tuple[int, ParamKey, list[float] | None]] = []  # of those, finished
        # Optuna keeps intermediate values of single-objective studies only.
        single = len(exp.objectives) == 1
        self.prunes = exp.prunes and single
        if self.prunes:
            from supervisor.config.pruners import make_pruner

            # The pruner named in the space file: it judges every reported epoch.
            study.pruner = make_pruner(exp.pruner, exp.pruner_options)
        self.flight = InFlight(study, exp.objectives[0].metric if single else None, self.prunes)
        self.inflight = self.flight.futures
        self.channel: channel.DriverChannel | None = None
        self.best: float | None = None
        self.stopping = Stopping(StopRule.of_experiment(exp))
        self.zombies: list[int] = []  # trials of dead drivers this run closed and re-queued
        self._stop: StopReason | None = None
        self._signal: str | None = None
        self._last_beat = self._last_takeover = self._renewed = 0.0
        self.watch: ClusterWatch = lambda log: None  # asked each turn (ClusterHandle.watch)
        self._late: dict[str, float] = {}  # results that did not come (channel.fetch_done)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> Summary:
        started = time.monotonic()
        recovered = recovery.recover(self.study)
        self.zombies = list(recovered.zombies)
        self.rec.load_models(self.zombies)
        budget = self.exp.budget.trials
        finished = self._finished_in_storage()
        ends = deadline.start(self.study, self.driver_id, self.exp.budget.timeout, started)
        self.channel = channel.DriverChannel(self.client, channel.topic(self.driver_id))
        self.flight.channel = self.channel
        feed = proposer(
            self.study, self.exp, self.storage_url, self.slots, self.proposer, self._tried
        )
        self.display.start(total=budget, done=finished, zombies=recovered.zombies)
        notes = campaign_notes(self.exp, budget - finished, self.slots)
        for note in notes:  # started last before the try: nothing can leave it running
            self.display.log(note)
        try:
            with stop_on_signals(self._on_signal), feed as self.proposals:
                while True:
                    self._heartbeat()
                    late: StopReason | None = "timeout" if time.monotonic() >= ends else None
                    if self._stop is None and (early := self.stopping.reached or late):
                        self._stop = early
                        self._cancel_queued()
                    if self._stop is None and (why := self.watch(self.display.log)):
                        self._stop, self.rec.failing = "cluster", why
                    if self._stop is None:
                        finished = self._fill()
                    self.display.update(done=finished, running=len(self.inflight), best=self.best)
                    if self._stop in CANCELLING or self.stopping.now:
                        self._cancel_all()
                    if not self.inflight and not self.waiting:
                        if self._stop is not None or finished >= budget:
                            break
                        self._take_over()  # the rest of the budget runs under other drivers
                    self._handle(self.channel.receive(timeout=0.5))
                    if self._stop is not None:  # else the next _fill counts
                        finished = self._finished_in_storage()
                        self._release_finished_elsewhere()
        finally:  # a storage gone for good raises: the terminal gets its cursor back
            recovery.stopped(self.driver_id)
            self.channel.close()
            self.display.stop()
        self._heartbeat(final=True)
        summary = Summary(
            requested=budget,
            finished=self._finished_in_storage(),
            stopped_by=self._stop or "budget",
            elapsed=time.monotonic() - started,
            recovered=recovery.Recovered(self.zombies, len(self.zombies)),
            states=dict(self.rec.states),
            signal=self._signal,
            failure=self.rec.failing,
            early=self.stopping.why,
        )
        return summary

    def _handle(self, items: list[tuple[str, Any]]) -> None:
        """Trial events and finished futures, in the order they arrived."""
        for kind, item in items:
            if kind == "event":
                self.flight.on_event(item)
            elif item[0] in self.inflight:
                self._finish(*item)
        # A callback that never came must not leave a finished trial in flight; while
        # items arrive, a done future's own result is on its way.
        if not items:  # fetched a few seconds at most each (a frozen worker holds it)
            for future, outcome in channel.fetch_done(list(self.inflight), self._late):
                self._finish(future, outcome)
        self.flight.record_starts()
        self.launches.send()  # twins that train now that their first run failed

    def _fill(self) -> int:
        """Submit trials until every slot (plus prefetch) is busy or the budget is met.

        Returns the finished count it read from storage (drivers may share a study).
        """
        self._look()
        self._release_finished_elsewhere()
        finished = self.index.finished
        running = self.index.running()
        budget = self.exp.budget.trials
        capacity = self.capacity()
        while len(self.inflight) + len(self.launches) < capacity and budget > finished + running:
            if self._stop is not None or self.stopping.reached:  # e.g. fail fast
                break
            self._heartbeat()  # a slow sampler must not let the lease run out mid-fill
            start = time.perf_counter()
            outcome = self._submit()
            self.prefetch.spent("ask", time.perf_counter() - start)
            if outcome == "surplus":
                break
            if outcome in ("told", "failed"):
                finished += 1
            else:
                running += 1
        self.launches.send()  # the trials of this fill: one message to the scheduler
        return finished

    def capacity(self) -> int:
        """Trials to keep in flight: every slot, plus those queued ahead (``Prefetch``)."""
        return self.slots + self.prefetch.ahead(self.placement.durations)

    def _submit(self) -> Submitted:
        trial = self.study.ask()
        try:
            with batch(self.study):  # its driver and parameters: one write
                trial.set_user_attr(attrs.DRIVER, self.driver_id)
                if self._surplus(trial.number):
                    self.rec.surplus(trial)
                    return "surplus"
                suggest(trial, self.exp.params)
        except StorageError:
            raise
        except Exception as exc:  # e.g. a re-queued configuration outside a changed space
            self.rec.fail(trial, "model", type(exc).__name__, f"sampling failed: {exc}")
            self._check_failing()
            return "failed"
        key = param_key(trial.params)
        if key in self.launches.keys:  # its twin must be in flight to wait on
            self.launches.send()
        if not self.exp.retrain_duplicates and attrs.RETRY_OF not in internals.user_attrs(trial):
            if key in self.index.completed:  # the sampler saw its result: a deliberate repeat
                earlier, values = self.index.completed[key]
                self.rec.duplicate(trial, earlier, values, known=True)
                return "told"
            if key in self.flight.by_key:  # its twin is in flight: wait for its result
                self.flight.by_key[key].twins.append(trial)
                return "parked"
            twin = self.index.elsewhere.get(key)
            if twin is not None:  # another driver trains it: wait for that result
                self.waiting.setdefault(twin, []).append(trial)
                return "parked"
        self._launch(trial, key)
        return "submitted"

    def _tried(self, params: dict[str, Any]) -> bool:
        """Whether a trial of the study has this configuration, as far as the driver knows
        (finished, in flight, about to be sent, or another driver's)."""
        key, index = param_key(params), self.index
        known = (index.completed, self.flight.by_key, self.launches.keys, index.elsewhere)
        return any(key in where for where in known)

    def _launch(self, trial: optuna.Trial, key: ParamKey) -> None:
        self.launches.launch(trial, key, lambda future: self._sent(future, trial, key))

    def _sent(self, future: Future, trial: optuna.Trial, key: ParamKey) -> None:
        self.flight.add(future, trial, key)
        if self.channel is not None:
            self.channel.watch(future)

    # -- results ----------------------------------------------------------------------

    def _finish(self, future: Future, outcome: channel.Outcome) -> None:
        """``outcome``: the result or error the channel fetched."""
        start = time.perf_counter()
        with batch(self.study):  # its attributes go with its state: one write
            self._conclude(future, outcome)
        self.prefetch.spent("record", time.perf_counter() - start)

    def _conclude(self, future: Future, outcome: channel.Outcome) -> None:
        # A result carries the trial's start: no need to store the stream's.
        run = self.flight.forget(future, started_known=not isinstance(outcome, BaseException))
        trial = run.trial
        values = None
        if not isinstance(outcome, BaseException) and outcome.keeps_checkpoints is False:
            self.rec.keeps_checkpoints = False  # the campaign's benchmark: none to clean up
        if isinstance(outcome, BaseException):  # its worker or node went away, not the trial
            error = f"{type(outcome).__name__}: {outcome}"
            started = run.worker is not None  # else it waited in the worker's queue
            self.rec.worker_lost(trial, type(outcome).__name__, error, started)
        elif outcome.status == "pruned":
            self._record_result(run, outcome)
            self.rec.pruned(trial, run.pruned_at)
        elif outcome.status == "complete" and outcome.values is not None:
            self._record_result(run, outcome)
            if run.pruned_at is not None:  # the verdict came after its last epoch
                trial.set_user_attr("prune_requested_at_epoch", run.pruned_at)
            values = outcome.values
            feasible = self.rec.complete(trial, values, outcome)
            self.index.completed.setdefault(run.key, (trial.number, values))
            self._update_best(values, feasible)
        elif outcome.failure == "infrastructure":  # its trial process died under it
            self._record_result(run, outcome)
            self.rec.worker_lost(trial, outcome.error_type, outcome.error or "", True)
        else:
            self._record_result(run, outcome)
            kind = outcome.failure or "model"
            self.rec.fail(trial, kind, outcome.error_type, outcome.error or "", outcome.history)
        self._check_failing()
        self._release(run.twins, trial.number, run.key, values)

    def _record_result(self, run: Running, result: TrialResult) -> None:
        set_user_attrs(run.trial, result_attrs(result, internals.user_attrs(run.trial)))
        self.rec.wrote(result)  # a full disk stops the campaign
        for entry in result.history:  # epochs the stream did not deliver (none, normally)
            self.flight.report(run, int(entry.get("epoch", 0)), entry)

    def _release(
        self, twins: list[optuna.Trial], earlier: int, key: ParamKey, values: list[float] | None
    ) -> None:
        """Duplicates that waited on trial ``earlier``: its values if it completed (not
        counted: proposed blind), else they train."""
        for twin in twins:
            if values is not None:
                self.rec.duplicate(twin, earlier, values, known=False)
            elif self._stop is None:
                self._launch(twin, key)
            else:  # stopping: never trained, nothing to re-run (the sampler asks anew)
                self.rec.fail(twin, "interrupted", "Interrupted", "a duplicate left waiting")
        twins.clear()

    # -- stopping ---------------------------------------------------------------------

    def _check_failing(self) -> None:
        if self.rec.failing is not None and self._stop is None:
            self._stop = self.rec.stop_reason

    def _on_signal(self, name: str) -> None:
        self._signal = name
        if self._stop != "failing":
            self._stop = "interrupt"
        self.display.log(f"{name}: stopping; running trials are recorded and re-queued")

    def _cancel_all(self) -> None:
        """A signal or fail fast: cancel every trial in flight, record it honestly, queue
        it again; one that has ended is recorded as it ended (its result is here)."""
        for future, outcome in channel.fetch_done(list(self.inflight), self._late):
            self._finish(future, outcome)
        why = stop_cause(self._stop, self._signal)
        futures = list(self.inflight)
        if futures:
            self.client.cancel(futures, force=True)
            # Dask cannot stop a running task, but the worker can kill its trial process.
            numbers = [run.trial.number for run in self.inflight.values()]
            # A worker gone has stopped its trial already; a frozen one hears nothing.
            tell_workers(self.client, cancel_trials, self.study.study_name, numbers)
        for future in futures:
            run = self.flight.forget(future)
            self.rec.interrupted(run.trial, "Interrupted", why)
            self._release(run.twins, run.trial.number, run.key, None)
        self._drop_waiting()

    def _cancel_queued(self) -> None:
        """Timeout, target, patience or a stop: trials no worker has begun are cancelled
        and re-queued (those that ended are not: their results are on their way)."""
        self._drop_waiting()
        begun = begun_keys(self.client, {str(f.key) for f in self.inflight})
        queued = [f for f in self.inflight if str(f.key) not in begun and not f.done()]
        if not queued:
            return
        self.client.cancel(queued, force=True)
        for future in queued:
            run = self.flight.forget(future)
            kind, why = ("Timeout", "timeout") if self._stop == "timeout" else ("Stopped", "stop")
            self.rec.interrupted(run.trial, kind, f"not started before the campaign {why}")
            self._release(run.twins, run.trial.number, run.key, None)

    def _drop_waiting(self) -> None:
        """Stopping: twins of other drivers' trials were never trained; none is re-run."""
        for twin in (twin for twins in self.waiting.values() for twin in twins):
            self.rec.fail(twin, "interrupted", "Interrupted", "a duplicate left waiting")
        self.waiting, self._ready = {}, []

    def _take_over(self) -> None:
        """Every trial the budget still needs runs under other drivers: wait for them, and
        close and re-queue those of a driver found dead (its lease ran out), which this
        driver's next fill then runs. Never "budget reached" before it is."""
        now = time.monotonic()
        if now - self._last_takeover < recovery.HEARTBEAT_EVERY:
            return
        self._last_takeover = now
        if found := recovery.recover(self.study).zombies:
            self.zombies += found
            self.display.log(f"Took over {len(found)} trial(s) of a driver that died")

    # -- bookkeeping ------------------------------------------------------------------

    def _look(self) -> None:
        """Read the study: budget counts, and what other drivers finished meanwhile."""
        from optuna.trial import TrialState

        done = self.index.update(self.study.get_trials(deepcopy=False), self.study)
        self.stopping.saw(done)
        for t in done:
            values = list(t.values) if t.state == TrialState.COMPLETE and t.values else None
            if values is not None and attrs.DUPLICATE_OF not in t.user_attrs:
                self._update_best(values, feasibility.feasible(t))
                if isinstance(seconds := t.user_attrs.get("duration_s"), int | float):
                    self.placement.finished(float(seconds))
            if t.number in self.waiting:  # released outside this look (it may be mid-ask)
                self._ready.append((t.number, param_key(t.params), values))

    def _release_finished_elsewhere(self) -> None:
        while self._ready:
            number, key, values = self._ready.pop(0)
            self._release(self.waiting.pop(number, []), number, key, values)

    def _finished_in_storage(self) -> int:
        self._look()
        return self.index.finished

    def _surplus(self, number: int) -> bool:
        """Whether the trials before ``number`` already fill the budget (``StudyIndex``)."""
        if not self.index.might_be_surplus(number, self.exp.budget.trials):
            return False
        self._look()
        return self.index.surplus(number, self.exp.budget.trials)

    def _update_best(self, values: list[float], feasible: bool) -> None:
        sign = -1 if self.exp.objectives[0].direction == "maximize" else 1
        better = self.best is None or sign * values[0] < sign * self.best
        if feasible and len(values) == 1 and better:  # an infeasible trial is never the best
            self.best = values[0]

    def _heartbeat(self, final: bool = False) -> None:
        """Renew this driver's lease (``supervisor.study.recovery``); clear it at the end."""
        now = time.time()
        if final or now - self._last_beat >= recovery.HEARTBEAT_EVERY:
            args = (self.study, self.driver_id, self._renewed, now)
            self._renewed = recovery.renew(*args, final=final)  # when due: not every beat
            self._last_beat = now
            self.stopping.poll(self.study)  # a `supervisor stop` from anywhere
        if final:  # every result on disk before the run reports
            flush(self.study)
