"""The driver: the only code that touches the Study. An asynchronous ask/tell loop.

Every worker slot stays busy: ``slots + prefetch`` trials are in flight and a finished
trial is replaced at once (no batch barrier). Results are told to the Study in the
order they finish. Stops when the budget of finished trials is reached, at the timeout
(no new trials; running ones finish, queued ones are cancelled) or on Ctrl-C (running
trials are cancelled, recorded as interrupted and queued again for the next run).

While trials run, their workers stream each start and epoch to the driver
(``supervisor.execution.channel``): the start is recorded at once (worker, host, time),
each epoch's first objective is reported to the study as an intermediate value, and the
pruner named in the space file judges it; a pruned trial stops at that epoch boundary
and is told as PRUNED.

Duplicates: a configuration the sampler proposes again while its twin is in flight waits
for the twin; one that already completed is not trained again. Either is told with the
earlier trial's values and the user attribute ``duplicate_of`` (unless the space file
sets ``retrain_duplicates: true``; re-runs of failed trials always train).

Placement: on workers with a lifetime (batch jobs), a trial goes only to workers expected
to outlive it, once finished trials give a duration estimate (``supervisor.study.placement``).

Epoch checkpoints: a trial saves one every ``budget.checkpoint_every`` epochs under
``<run dir>/checkpoints/<key>/``, keyed by the first trial of its retry chain (the
``retry_of`` attribute), so a re-run after an infrastructure failure or an interruption
resumes there; the re-run gets its chain's seed too. The driver removes the directory
once the chain ends (complete, pruned, or failed by the model).
"""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import supervisor.rundir as rundir
from supervisor.config.params import suggest
from supervisor.execution import channel
from supervisor.execution.trial import TrialResult, TrialSpec
from supervisor.execution.worker import cancel_trials, run_trial
from supervisor.study import attrs, recovery
from supervisor.study.events import CampaignListener, Silent
from supervisor.study.placement import Placement
from supervisor.study.storage import StorageError, batch, set_user_attrs

if TYPE_CHECKING:
    import optuna
    from distributed import Client, Future

    from supervisor.config.space import Experiment

# A trial's start (worker, host, time) is stored once it has run this long: a short
# trial's result, which carries the same, then costs one storage write instead of two.
START_RECORD_DELAY = 1.0

StopReason = Literal["budget", "timeout", "interrupt"]
Submitted = Literal["submitted", "parked", "told", "failed", "surplus"]
ParamKey = tuple[tuple[str, str], ...]


def param_key(params: dict[str, Any]) -> ParamKey:
    """Identity of a configuration: equal parameters, equal key (repr keeps 1 and 1.0 and
    True apart, as the sampler's distributions do)."""
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


@dataclass
class _Running:
    """A trial handed to Dask, and what the stream told about it so far."""

    trial: optuna.Trial
    key: ParamKey
    worker: str | None = None
    reported: set[int] = field(default_factory=set)  # epochs reported to the study
    pruned_at: int | None = None  # epoch at which the pruner said stop
    twins: list[optuna.Trial] = field(default_factory=list)  # duplicates waiting on it
    unrecorded: dict[str, Any] = field(default_factory=dict)  # its start, not yet stored
    started_at: float = 0.0  # monotonic time the start arrived


@dataclass
class Summary:
    requested: int
    finished: int  # trials that count toward the budget, this run and earlier ones
    stopped_by: StopReason
    elapsed: float
    recovered: recovery.Recovered
    states: dict[str, int] = field(default_factory=dict)  # this run: outcome -> count


class _Tally:
    """Budget counts of the study, kept up to date cheaply: a finished trial never changes,
    so each look re-reads only the trials that were unfinished at the last one (the ones
    in flight, this driver's and others'), not all of them: O(in flight), not O(trials)."""

    def __init__(self) -> None:
        self.seen = 0  # trials looked at so far (get_trials is in trial-number order)
        self.open: set[int] = set()  # numbers of those not finished at the last look
        self.finished = 0  # finished ones that count toward the budget

    def update(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        self.open.update(range(self.seen, len(trials)))
        self.seen = len(trials)
        for number in [n for n in self.open if trials[n].state.is_finished()]:
            self.open.discard(number)
            if attrs.counts_toward_budget(trials[number]):
                self.finished += 1


def _chain(trial: optuna.Trial) -> int:
    """The first trial of ``trial``'s retry chain (itself for a first attempt)."""
    first = trial.user_attrs.get(attrs.RETRY_OF)
    return int(first) if isinstance(first, int) else trial.number


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
        max_attempts: int = 3,
        resources: dict[str, float] | None = None,
    ) -> None:
        self.exp, self.study, self.client = exp, study, client
        # A K-rank trial runs K processes (each with `threads`) on its worker's node: it
        # takes K slots. No prefetch then: a queued task starts at once on an idle worker.
        self.slots = max(1, slots // exp.ranks)
        self.threads = threads
        # One queued trial per slot hides the round trip driver <-> worker, which costs
        # a third of the throughput for sub-second trials when only `slots` are in flight.
        if exp.ranks > 1:
            prefetch = 0
        self.capacity = self.slots + (self.slots if prefetch is None else max(0, prefetch))
        self.display: CampaignListener = display or Silent()
        self.run_dir = run_dir
        self.max_attempts = max_attempts
        # Each trial keeps its predictions when the campaign builds ensembles from them.
        self.save_outputs = exp.ensemble is not None
        self.placement = Placement(client)
        self.resources = resources  # Dask resources each trial needs (e.g. a GPU)
        self.driver_id = recovery.new_driver_id()
        self.inflight: dict[Future, _Running] = {}
        self.by_number: dict[int, _Running] = {}
        self.unrecorded: dict[int, _Running] = {}  # starts not stored yet, oldest first
        self.by_key: dict[ParamKey, _Running] = {}
        self.completed: dict[ParamKey, tuple[int, list[float]]] = {}  # key -> (trial, values)
        # Optuna keeps intermediate values of single-objective studies only.
        self.single = len(exp.objectives) == 1
        self.prunes = exp.prunes and self.single
        if self.prunes:
            from supervisor.config.pruners import make_pruner

            # The pruner named in the space file: it judges every reported epoch.
            study.pruner = make_pruner(exp.pruner, exp.pruner_options)
        self.channel: channel.DriverChannel | None = None
        self.states: dict[str, int] = {}
        self.best: float | None = None
        self._stop: StopReason | None = None
        self._last_beat = 0.0
        self._tally = _Tally()

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> Summary:
        started = time.monotonic()
        recovered = recovery.recover(self.study)
        finished = self._finished_in_storage()
        self._initial_best()
        self._index_completed()
        self.display.start(total=self.exp.budget.trials, done=finished, zombies=recovered.zombies)
        deadline = started + self.exp.budget.timeout if self.exp.budget.timeout else math.inf
        self.channel = channel.DriverChannel(self.client, channel.topic(self.driver_id))
        try:
            with self._sigint_sets_stop():
                while True:
                    self._heartbeat()
                    if self._stop is None and time.monotonic() >= deadline:
                        self._stop = "timeout"
                        self._cancel_queued()
                    if self._stop is None:
                        finished = self._fill()
                    self.display.update(done=finished, running=len(self.inflight), best=self.best)
                    if self._stop == "interrupt":
                        self._cancel_all()
                    if not self.inflight:
                        break
                    self._handle(self.channel.receive(timeout=0.5))
                    if self._stop is not None:  # else the next _fill counts
                        finished = self._finished_in_storage()
        finally:
            self.channel.close()
        self._heartbeat(final=True)
        summary = Summary(
            requested=self.exp.budget.trials,
            finished=self._finished_in_storage(),
            stopped_by=self._stop or "budget",
            elapsed=time.monotonic() - started,
            recovered=recovered,
            states=dict(self.states),
        )
        self.display.stop()
        return summary

    def _handle(self, items: list[tuple[str, Any]]) -> None:
        """Trial events and finished futures, in the order they arrived."""
        for kind, item in items:
            if kind == "event":
                self._on_event(item)
            elif item[0] in self.inflight:
                self._finish(*item)
        # A callback that never came must not leave a finished trial in flight; while
        # items arrive, a done future's own result is on its way.
        if not items:
            for future in [f for f in self.inflight if f.done()]:
                self._finish(future)
        self._record_starts(time.monotonic() - START_RECORD_DELAY)

    def _record_starts(self, before: float) -> None:
        """Store the starts that arrived before ``before`` (``supervisor status``)."""
        with batch(self.study):
            while self.unrecorded:
                number, run = next(iter(self.unrecorded.items()))
                if run.started_at > before:
                    return
                del self.unrecorded[number]
                set_user_attrs(run.trial, run.unrecorded)
                run.unrecorded = {}

    def _fill(self) -> int:
        """Submit trials until every slot (plus prefetch) is busy or the budget is met.

        Returns the finished count it read from storage (drivers may share a study).
        """
        trials = self._look()
        finished = self._tally.finished
        running = self._running(trials)
        while len(self.inflight) < self.capacity and self.exp.budget.trials > finished + running:
            outcome = self._submit()
            if outcome == "surplus":
                break
            if outcome in ("told", "failed"):
                finished += 1
            else:
                running += 1
        return finished

    def _submit(self) -> Submitted:
        trial = self.study.ask()
        try:
            with batch(self.study):  # its driver and parameters: one write
                trial.set_user_attr(attrs.DRIVER, self.driver_id)
                if self._surplus(trial.number):  # ended unrun; not counted toward the budget
                    from optuna.trial import TrialState

                    trial.set_user_attr(attrs.FAILURE, "surplus")
                    self._tell(trial, state=TrialState.FAIL)
                    return "surplus"
                suggest(trial, self.exp.params)
        except StorageError:
            raise
        except Exception as exc:  # e.g. a re-queued configuration outside a changed space
            self._fail(trial, "model", type(exc).__name__, f"sampling failed: {exc}")
            return "failed"
        key = param_key(trial.params)
        if not self.exp.retrain_duplicates and attrs.RETRY_OF not in trial.user_attrs:
            if key in self.completed:
                earlier, values = self.completed[key]
                self._tell_duplicate(trial, earlier, values)
                return "told"
            if key in self.by_key:  # its twin is in flight: wait for its result
                self.by_key[key].twins.append(trial)
                return "parked"
        self._launch(trial, key)
        return "submitted"

    def _launch(self, trial: optuna.Trial, key: ParamKey) -> None:
        chain = _chain(trial)
        checkpoints = self._checkpoint_dir(trial)
        spec = TrialSpec(
            study_name=self.study.study_name,
            trial_number=trial.number,
            params={**self.exp.fixed, **trial.params},
            benchmark=self.exp.benchmark,
            benchmark_target=self.exp.benchmark_target,
            options=self.exp.options,
            epochs=self.exp.budget.epochs,
            seed=self._seed(trial, chain),
            data_seed=self.exp.seed,
            objectives=tuple(self.exp.metric_names),
            threads=self.threads,
            time_limit=self.exp.budget.trial_timeout,
            ranks=self.exp.ranks,
            run_dir=self.run_dir,
            node=self.exp.node,
            events_topic=self.channel.topic if self.channel else None,
            verdict_timeout=channel.VERDICT_TIMEOUT if self.prunes else 0.0,
            checkpoint_dir=str(checkpoints) if checkpoints is not None else None,
            checkpoint_every=self.exp.budget.checkpoint_every,
            save_outputs=self.save_outputs,
        )
        # The key carries the trial number so the dashboard's task stream is readable.
        task = f"trial-{trial.number}-{self.driver_id.rsplit(':', 1)[-1]}"
        # On workers with a lifetime: only those expected to outlive the trial.
        fits = self.placement.workers_for_next_trial()
        where: dict[str, Any] = {"workers": fits, "allow_other_workers": True} if fits else {}
        if self.resources:
            where["resources"] = self.resources
        future: Future = self.client.submit(run_trial, spec, key=task, pure=False, **where)
        run = _Running(trial, key)
        self.inflight[future] = run
        self.by_number[trial.number] = run
        self.by_key.setdefault(key, run)
        if self.channel is not None:
            self.channel.watch(future)

    def _seed(self, trial: optuna.Trial, chain: int) -> int:
        """The trial's own seed when it was queued with one (an ensemble member), else
        one per retry chain: a re-run trains as its first attempt did."""
        given = trial.user_attrs.get(attrs.SEED)
        if isinstance(given, int) and not isinstance(given, bool):
            return given % 2**32
        return (self.exp.seed + chain) % 2**32

    # -- the stream -------------------------------------------------------------------

    def _on_event(self, msg: Any) -> None:
        if not isinstance(msg, dict) or msg.get("study") != self.study.study_name:
            return
        run = self.by_number.get(msg.get("trial"))  # type: ignore[arg-type]
        if run is None:  # finished already, or another driver's
            return
        if msg.get("kind") == "started":  # `supervisor status` shows where it runs
            run.worker = msg.get("worker")
            seen = {
                "worker": run.worker,
                "hostname": msg.get("hostname"),
                "started": msg.get("time"),
            }
            run.unrecorded = {k: v for k, v in seen.items() if v is not None}
            # Its age when the message left (workers announce longer trials late).
            began = msg.get("time")
            age = time.time() - began if isinstance(began, int | float) else 0.0
            run.started_at = time.monotonic() - min(START_RECORD_DELAY, max(0.0, age))
            self.unrecorded.pop(run.trial.number, None)  # a repeated start goes last
            self.unrecorded[run.trial.number] = run
        elif msg.get("kind") == "epoch" and isinstance(msg.get("metrics"), dict):
            self._on_epoch(run, int(msg["epoch"]), msg["metrics"])

    def _on_epoch(self, run: _Running, epoch: int, metrics: dict[str, Any]) -> None:
        self._report(run, epoch, metrics)
        if not self.prunes:
            return
        if run.pruned_at is None and run.trial.should_prune():
            run.pruned_at = epoch
        if self.channel is not None:
            verdict = (self.study.study_name, run.trial.number, epoch, run.pruned_at is not None)
            self.channel.send_verdict(run.worker, verdict)

    def _report(self, run: _Running, epoch: int, metrics: dict[str, Any]) -> None:
        """The first objective at ``epoch`` becomes an intermediate value (a learning curve
        point, and what the pruner judges)."""
        value = metrics.get(self.exp.objectives[0].metric)
        if not self.single or epoch in run.reported or not isinstance(value, (int, float)):
            return
        run.trial.report(float(value), step=epoch)
        run.reported.add(epoch)

    # -- results ----------------------------------------------------------------------

    def _finish(self, future: Future, outcome: channel.Outcome | None = None) -> None:
        """``outcome``: the result or error the channel fetched; None fetches it now."""
        if outcome is None:
            outcome = channel.fetch(future)
        with batch(self.study):  # its attributes go with its state: one write
            self._conclude(future, outcome)

    def _conclude(self, future: Future, outcome: channel.Outcome) -> None:
        # A result carries the trial's start: no need to store the stream's.
        run = self._forget(future, started_known=not isinstance(outcome, BaseException))
        trial = run.trial
        if isinstance(outcome, BaseException):  # its worker or node went away, not the trial
            error = f"{type(outcome).__name__}: {outcome}"
            self._infrastructure_failure(trial, type(outcome).__name__, error)
            self._release_twins(run, None)
            return
        result: TrialResult = outcome
        self._record_result_attrs(trial, result)
        for entry in result.history:  # epochs the stream did not deliver (none, normally)
            self._report(run, int(entry.get("epoch", 0)), entry)
        values = None
        if result.status == "pruned":
            from optuna.trial import TrialState

            trial.set_user_attr("pruned_at_epoch", run.pruned_at)
            self._tell(trial, state=TrialState.PRUNED)
            self._drop_checkpoints(trial)
            self._count("pruned")
            self.display.trial_pruned(trial.number, run.pruned_at)
        elif result.status == "complete" and result.values is not None:
            if run.pruned_at is not None:  # the verdict came after its last epoch
                trial.set_user_attr("prune_requested_at_epoch", run.pruned_at)
            self._tell(trial, values=result.values)
            self._drop_checkpoints(trial)
            values = result.values
            self.placement.finished(result.duration)
            self.completed.setdefault(run.key, (trial.number, values))
            self._count("complete")
            self._update_best(result.values)
            self.display.trial_done(trial.number, "complete", result.values, result)
        elif result.failure == "infrastructure":  # its trial process died under it
            self._infrastructure_failure(trial, result.error_type, result.error or "")
        else:
            self._fail(trial, result.failure or "model", result.error_type, result.error or "")
        self._release_twins(run, values)

    def _release_twins(self, run: _Running, values: list[float] | None) -> None:
        """Duplicates that waited on ``run``: its values if it completed, else they train."""
        for twin in run.twins:
            if values is not None:
                self._tell_duplicate(twin, run.trial.number, values)
            elif self._stop is None:
                self._launch(twin, run.key)
            else:  # stopping: never trained, nothing to re-run (the sampler asks anew)
                self._fail(twin, "interrupted", "Interrupted", "a duplicate left waiting")
        run.twins = []

    def _tell_duplicate(self, trial: optuna.Trial, earlier: int, values: list[float]) -> None:
        trial.set_user_attr(attrs.DUPLICATE_OF, earlier)
        self._tell(trial, values=values)
        self.completed.setdefault(param_key(trial.params), (earlier, values))
        self._count("duplicate")
        self.display.trial_duplicate(trial.number, earlier)

    def _tell(self, trial: optuna.Trial, **kwargs: Any) -> None:
        try:
            self.study.tell(trial, skip_if_finished=True, **kwargs)
        except RuntimeError as exc:
            # GridSampler calls study.stop() once the grid is covered, which only works
            # inside study.optimize; the trial was stored before that.
            if "Study.stop" not in str(exc):
                raise

    def _record_result_attrs(self, trial: optuna.Trial, result: TrialResult) -> None:
        values: dict[str, Any] = {
            "worker": result.worker,
            "hostname": result.hostname,
            "started": result.started,
            "finished": result.finished,
            "duration_s": result.duration,
            "metrics": result.metrics,
        }
        if result.history:
            values["history"] = result.history
        if result.data_seconds:
            values["data_seconds"] = result.data_seconds
        keys = ("rss_mb", "artifacts", "artifacts_error", "outputs", "outputs_error")
        for key in (*keys, "resumed_from_epoch"):
            if key in result.extra:
                values[key] = result.extra[key]
        if result.traceback:
            values["traceback"] = result.traceback
        stored = trial.user_attrs  # the stream's worker and hostname: not written again
        set_user_attrs(
            trial, {k: v for k, v in values.items() if k not in stored or stored[k] != v}
        )

    def _fail(self, trial: optuna.Trial, kind: str, error_type: str | None, error: str) -> None:
        from optuna.trial import TrialState

        failure = {attrs.FAILURE: kind, "error_type": error_type or "Error", "error": error}
        set_user_attrs(trial, failure)
        self._tell(trial, state=TrialState.FAIL)
        if kind == "model":  # not run again: its checkpoints are of no further use
            self._drop_checkpoints(trial)
        self._count(f"failed ({kind})")
        self.display.trial_done(trial.number, "failed", None, None, error=error, kind=kind)

    def _infrastructure_failure(
        self, trial: optuna.Trial, error_type: str | None, error: str
    ) -> None:
        attempt = int(trial.user_attrs.get(attrs.ATTEMPT, 1))
        error = error[:2000]
        if attempt >= self.max_attempts:
            # Its worker died every time: the trial itself is the likely cause (e.g. OOM).
            message = f"its worker died on all {attempt} attempts; last: {error}"
            self._fail(trial, "model", "WorkerDiedRepeatedly", message)
            return
        self._fail(trial, "infrastructure", error_type, error)
        self._requeue(trial)

    def _requeue(self, trial: optuna.Trial) -> None:
        recovery.requeue(self.study, trial.number, trial.params, trial.user_attrs)

    # -- checkpoints ------------------------------------------------------------------

    def _checkpoint_dir(self, trial: optuna.Trial) -> Path | None:
        # K-rank trials would have K writers: they restart instead (supervisor.execution.ranks).
        if self.run_dir is None or self.exp.budget.checkpoint_every <= 0 or self.exp.ranks > 1:
            return None
        return rundir.checkpoint_dir(Path(self.run_dir), _chain(trial))

    def _drop_checkpoints(self, trial: optuna.Trial) -> None:
        path = self._checkpoint_dir(trial)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    # -- stopping ---------------------------------------------------------------------

    def _cancel_all(self) -> None:
        """Ctrl-C: cancel every in-flight trial, record it honestly, queue it again."""
        futures = list(self.inflight)
        self.client.cancel(futures, force=True)
        # Dask cannot stop a running task, but the worker can kill its trial process.
        numbers = [run.trial.number for run in self.inflight.values()]
        with suppress(Exception):  # a worker that is gone has stopped its trial already
            self.client.run(cancel_trials, self.study.study_name, numbers)
        for future in futures:
            run = self._forget(future)
            self._fail(run.trial, "interrupted", "Interrupted", "stopped by the user (Ctrl-C)")
            self._requeue(run.trial)
            self._release_twins(run, None)

    def _cancel_queued(self) -> None:
        """Timeout: trials not yet executing on a worker are cancelled and re-queued."""
        executing = self._executing_keys()
        queued = [f for f in self.inflight if str(f.key) not in executing]
        if not queued:
            return
        self.client.cancel(queued, force=True)
        for future in queued:
            run = self._forget(future)
            message = "not started before the campaign timeout"
            self._fail(run.trial, "interrupted", "Timeout", message)
            self._requeue(run.trial)
            self._release_twins(run, None)

    def _forget(self, future: Future, started_known: bool = False) -> _Running:
        run = self.inflight.pop(future)
        if run.unrecorded and not started_known:  # where it was when it failed
            set_user_attrs(run.trial, run.unrecorded)
        run.unrecorded = {}
        self.unrecorded.pop(run.trial.number, None)
        self.by_number.pop(run.trial.number, None)
        if self.by_key.get(run.key) is run:
            del self.by_key[run.key]
        return run

    def _executing_keys(self) -> set[str]:
        def executing(dask_worker: Any) -> list[str]:
            return [str(ts.key) for ts in dask_worker.state.executing]

        try:
            per_worker = self.client.run(executing)
        except Exception:  # a worker went away mid-call: treat everything as executing
            return {str(f.key) for f in self.inflight}
        return {key for keys in per_worker.values() for key in keys}

    @contextmanager
    def _sigint_sets_stop(self) -> Iterator[None]:
        """First Ctrl-C: stop cleanly at the next loop turn. Second: default behaviour."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop == "interrupt":
                raise KeyboardInterrupt
            self._stop = "interrupt"
            self.display.log("Interrupted: stopping; running trials are recorded and re-queued")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- bookkeeping ------------------------------------------------------------------

    def _look(self) -> list[optuna.trial.FrozenTrial]:
        trials = self.study.get_trials(deepcopy=False)
        self._tally.update(trials)
        return trials

    def _finished_in_storage(self) -> int:
        self._look()
        return self._tally.finished

    def _surplus(self, number: int) -> bool:
        """Whether the trials before ``number`` already fill the budget: another driver
        sharing the study asked between this driver's count and its ask. Of two such asks
        the later trial number yields, so drivers sharing a study finish exactly the budget."""
        from optuna.trial import TrialState

        # ``number`` itself is open: if the budget is not full even with every other open
        # trial counted, and every trial not looked at yet counted as open, there is no
        # need to look (every trial but the campaign's last ones).
        unseen = max(0, number + 1 - self._tally.seen)
        if self._tally.finished + len(self._tally.open) + unseen - 1 < self.exp.budget.trials:
            return False
        trials = self._look()
        earlier = sum(
            1 for n in self._tally.open if n < number and trials[n].state == TrialState.RUNNING
        )
        return self._tally.finished + earlier >= self.exp.budget.trials

    def _running(self, trials: list[optuna.trial.FrozenTrial]) -> int:
        """RUNNING trials of every driver on this study (several drivers may share it), as
        of the last look (``trials``)."""
        from optuna.trial import TrialState

        return sum(1 for n in self._tally.open if trials[n].state == TrialState.RUNNING)

    def _count(self, outcome: str) -> None:
        self.states[outcome] = self.states.get(outcome, 0) + 1

    def _update_best(self, values: list[float]) -> None:
        if len(values) != 1:
            return
        value = values[0]
        maximize = self.exp.objectives[0].direction == "maximize"
        if self.best is None or (value > self.best if maximize else value < self.best):
            self.best = value

    def _index_completed(self) -> None:
        from optuna.trial import TrialState

        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.values is not None:
                self.completed.setdefault(param_key(t.params), (t.number, list(t.values)))
            seconds = t.user_attrs.get("duration_s")
            if isinstance(seconds, int | float) and attrs.DUPLICATE_OF not in t.user_attrs:
                self.placement.finished(float(seconds))

    def _initial_best(self) -> None:
        if len(self.exp.objectives) == 1:
            from optuna.trial import TrialState

            complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            for t in complete:
                if t.values:
                    self._update_best(list(t.values))

    def _heartbeat(self, final: bool = False) -> None:
        now = time.time()
        if final or now - self._last_beat >= recovery.HEARTBEAT_EVERY:
            key = attrs.HEARTBEAT_PREFIX + self.driver_id
            self.study.set_user_attr(key, None if final else now)
            self._last_beat = now
