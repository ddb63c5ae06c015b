"""The driver: the only code that touches the Study. An asynchronous ask/tell loop.

Every worker slot stays busy: ``slots + prefetch`` trials are in flight and a finished
trial is replaced at once (no batch barrier). Results are told to the Study in the
order they finish. Stops when the budget of finished trials is reached, at the timeout
(no new trials; running ones finish, queued ones are cancelled) or on Ctrl-C (running
trials are cancelled, recorded as interrupted and queued again for the next run).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from supervisor import attrs, recovery
from supervisor.params import suggest
from supervisor.progress import Display
from supervisor.trial import TrialResult, TrialSpec
from supervisor.trial_host import cancel_trials
from supervisor.worker import run_trial

if TYPE_CHECKING:
    import optuna
    from distributed import Client, Future

    from supervisor.space import Experiment

StopReason = Literal["budget", "timeout", "interrupt"]


@dataclass
class Summary:
    requested: int
    finished: int  # trials that count toward the budget, this run and earlier ones
    stopped_by: StopReason
    elapsed: float
    recovered: recovery.Recovered
    states: dict[str, int] = field(default_factory=dict)  # this run: outcome -> count


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
        display: Display | None = None,
        run_dir: str | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.exp, self.study, self.client = exp, study, client
        self.slots = max(1, slots)
        self.threads = threads
        # One queued trial per slot hides the round trip driver <-> worker, which costs
        # a third of the throughput for sub-second trials when only `slots` are in flight.
        self.capacity = self.slots + (self.slots if prefetch is None else max(0, prefetch))
        self.display = display or Display(quiet=True)
        self.run_dir = run_dir
        self.max_attempts = max_attempts
        self.driver_id = recovery.new_driver_id()
        self.inflight: dict[Future, optuna.Trial] = {}
        self.states: dict[str, int] = {}
        self.best: float | None = None
        self._stop: StopReason | None = None
        self._last_beat = 0.0

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> Summary:
        from distributed import wait

        started = time.monotonic()
        recovered = recovery.recover(self.study)
        finished = self._finished_in_storage()
        self._initial_best()
        self.display.start(total=self.exp.budget.trials, done=finished, zombies=recovered.zombies)
        deadline = started + self.exp.budget.timeout if self.exp.budget.timeout else math.inf
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
                try:
                    done, _ = wait(list(self.inflight), timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                for future in done:
                    self._finish(future, self.inflight.pop(future))
                finished = self._finished_in_storage()
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

    def _fill(self) -> int:
        """Submit trials until every slot (plus prefetch) is busy or the budget is met.

        Returns the finished count it read from storage (drivers may share a study).
        """
        finished = self._finished_in_storage()
        free = self.capacity - len(self.inflight)
        if free > 0:
            remaining = self.exp.budget.trials - finished - self._running()
            for _ in range(min(free, remaining)):
                self._submit()
        return finished

    def _submit(self) -> None:

        trial = self.study.ask()
        trial.set_user_attr(attrs.DRIVER, self.driver_id)
        try:
            params = suggest(trial, self.exp.params)
        except Exception as exc:  # e.g. a re-queued configuration outside a changed space
            self._fail(trial, "model", type(exc).__name__, f"sampling failed: {exc}")
            return
        spec = TrialSpec(
            study_name=self.study.study_name,
            trial_number=trial.number,
            params={**self.exp.fixed, **params},
            benchmark=self.exp.benchmark,
            benchmark_target=self.exp.benchmark_target,
            options=self.exp.options,
            epochs=self.exp.budget.epochs,
            seed=(self.exp.seed + trial.number) % 2**32,
            data_seed=self.exp.seed,
            objectives=tuple(self.exp.metric_names),
            threads=self.threads,
            run_dir=self.run_dir,
            node=self.exp.node,
        )
        # The key carries the trial number so the dashboard's task stream is readable.
        key = f"trial-{trial.number}-{self.driver_id.rsplit(':', 1)[-1]}"
        future: Future = self.client.submit(run_trial, spec, key=key, pure=False)
        self.inflight[future] = trial

    # -- results ----------------------------------------------------------------------

    def _finish(self, future: Future, trial: optuna.Trial) -> None:
        try:
            result: TrialResult = future.result()
        except Exception as exc:  # the worker or its node went away: not the trial's fault
            self._infrastructure_failure(trial, type(exc).__name__, f"{type(exc).__name__}: {exc}")
            return
        self._record_result_attrs(trial, result)
        if result.status == "complete" and result.values is not None:
            self._report_curve(trial, result)
            self.study.tell(trial, result.values)
            self._count("complete")
            self._update_best(result.values)
            self.display.trial_done(trial.number, "complete", result.values, result)
        elif result.failure == "infrastructure":  # its trial process died under it
            self._infrastructure_failure(trial, result.error_type, result.error or "")
        else:
            self._fail(trial, result.failure or "model", result.error_type, result.error or "")

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
        for key in ("rss_mb", "artifacts", "artifacts_error"):
            if key in result.extra:
                values[key] = result.extra[key]
        if result.traceback:
            values["traceback"] = result.traceback
        for key, value in values.items():
            trial.set_user_attr(key, value)

    def _report_curve(self, trial: optuna.Trial, result: TrialResult) -> None:
        """Per-epoch values of the first objective become intermediate values."""
        if len(self.exp.objectives) != 1:
            return  # Optuna stores intermediate values for single-objective studies only
        metric = self.exp.objectives[0].metric
        for entry in result.history:
            value = entry.get(metric)
            if value is not None and math.isfinite(value):
                trial.report(value, step=int(entry["epoch"]))

    def _fail(self, trial: optuna.Trial, kind: str, error_type: str | None, error: str) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr(attrs.FAILURE, kind)
        trial.set_user_attr("error_type", error_type or "Error")
        trial.set_user_attr("error", error)
        self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
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
        recovery.requeue(
            self.study,
            trial.number,
            trial.params,
            int(trial.user_attrs.get(attrs.ATTEMPT, 1)),
            trial.user_attrs.get(attrs.RETRY_OF),
        )

    # -- stopping ---------------------------------------------------------------------

    def _cancel_all(self) -> None:
        """Ctrl-C: cancel every in-flight trial, record it honestly, queue it again."""
        futures = list(self.inflight)
        self.client.cancel(futures, force=True)
        # Dask cannot stop a running task, but the worker can kill its trial process.
        numbers = [trial.number for trial in self.inflight.values()]
        with suppress(Exception):  # a worker that is gone has stopped its trial already
            self.client.run(cancel_trials, self.study.study_name, numbers)
        for future in futures:
            trial = self.inflight.pop(future)
            self._fail(trial, "interrupted", "Interrupted", "stopped by the user (Ctrl-C)")
            self._requeue(trial)

    def _cancel_queued(self) -> None:
        """Timeout: trials not yet executing on a worker are cancelled and re-queued."""
        executing = self._executing_keys()
        queued = [f for f in self.inflight if str(f.key) not in executing]
        if not queued:
            return
        self.client.cancel(queued, force=True)
        for future in queued:
            trial = self.inflight.pop(future)
            self._fail(trial, "interrupted", "Timeout", "not started before the campaign timeout")
            self._requeue(trial)

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

    def _finished_in_storage(self) -> int:
        trials = self.study.get_trials(deepcopy=False)
        return sum(1 for t in trials if attrs.counts_toward_budget(t))

    def _running(self) -> int:
        """RUNNING trials of every driver on this study (several drivers may share it)."""
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    def _count(self, outcome: str) -> None:
        self.states[outcome] = self.states.get(outcome, 0) + 1

    def _update_best(self, values: list[float]) -> None:
        if len(values) != 1:
            return
        value = values[0]
        maximize = self.exp.objectives[0].direction == "maximize"
        if self.best is None or (value > self.best if maximize else value < self.best):
            self.best = value

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
