"""How each trial ended, told to the study with its cause: the driver's results side.

Every end is data: complete with its values, pruned at its epoch, failed by the model
(its error and traceback), by the infrastructure (its worker died: re-run by the policy of
``supervisor.study.retry``), interrupted (re-run; so is a trial that found the run's disk
full, which stops the campaign), or a duplicate told with its twin's values. The recorder
also keeps the run's counts per outcome, the fail-fast check (``supervisor.study.failfast``),
the trials' epoch checkpoints, which go once their retry chain ends, and the best trials'
models, artifacts and ensemble predictions (``kept_models``, ``kept_artifacts``): the
others' go.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.optuna_internals as internals
import supervisor.rundir as rundir
from supervisor.execution.trial import DIED_REPEATEDLY, DISK_FULL
from supervisor.study import attrs, failfast, feasibility, recovery, retry
from supervisor.study.events import CampaignListener
from supervisor.study.kept_artifacts import KeptArtifacts, drop_lost, outputs_kept
from supervisor.study.kept_models import KeptModels, remove_trial_file
from supervisor.study.storage import set_user_attrs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import optuna

    from supervisor.config.experiment import Experiment
    from supervisor.execution.trial import TrialResult
    from supervisor.study.outcomes import StopReason


def chain(trial: optuna.Trial) -> int:
    """The first trial of ``trial``'s retry chain (itself for a first attempt)."""
    first = internals.user_attrs(trial).get(attrs.RETRY_OF)
    return int(first) if isinstance(first, int) else trial.number


def trial_seed(trial: optuna.Trial, seed: int) -> int:
    """The trial's own seed when it was queued with one (an ensemble member), else one
    per retry chain (from the space file's ``seed``): a re-run trains as its first
    attempt did."""
    given = internals.user_attrs(trial).get(attrs.SEED)
    if isinstance(given, int) and not isinstance(given, bool):
        return given % 2**32
    return (seed + chain(trial)) % 2**32


class Recorder:
    def __init__(
        self,
        exp: Experiment,
        study: optuna.Study,
        display: CampaignListener,
        run_dir: str | None,
        max_attempts: int,
    ) -> None:
        self.exp, self.study, self.display = exp, study, display
        self.run_dir = run_dir
        self.max_attempts = max_attempts
        # False once a result says the benchmark saves no epoch checkpoints: its trials
        # get no checkpoint directory, and finishing one removes none (a file-system
        # call per trial on the driver's thread, which no-op trials feel).
        self.keeps_checkpoints = True
        self.states: dict[str, int] = {}  # this run: outcome -> count
        self.fail_fast = failfast.FailFast(exp.budget.fail_fast)
        self.failing: str | None = None  # set when fail fast says stop: the reason
        # The best trials' trained models (``keep_models``), None when none are kept.
        self.models: KeptModels | None = None
        if exp.keep_models > 0 and run_dir is not None:
            # An ensemble takes its members by the first objective: so are they kept.
            first = exp.ensemble is not None
            # Workers skip the models of trials that break the constraints. Not for K ranks:
            # rank 0 saves before the ranks' node_seconds and peak_memory_mb are summed.
            bounds = tuple((c.metric, c.low, c.high) for c in exp.constraints)
            bounds = bounds if exp.ranks == 1 else ()
            self.models = KeptModels(Path(run_dir), exp.keep_models, exp.directions, first, bounds)
        self.stop_reason: StopReason = "failing"  # or "disk": a trial found the disk full
        self.artifacts: KeptArtifacts | None = None  # the best trials' (made at the first)
        self.outputs: KeptArtifacts | None = None  # their ensemble predictions (the same)

    def load_models(self, zombies: Sequence[int] = ()) -> None:
        """The models kept by earlier runs (``KeptModels.load``): called once recovery has
        closed the trials of dead drivers (``zombies``), whose files then go, and damaged
        ones with a line saying so."""
        for number in zombies:
            self._drop_arrays(number)
        if self.models is not None:
            for note in self.models.load(self.study):
                self.display.log(note)

    def count(self, outcome: str) -> None:
        self.states[outcome] = self.states.get(outcome, 0) + 1

    def tell(self, trial: optuna.Trial, **kwargs: Any) -> None:
        internals.tell(self.study, trial, skip_if_finished=True, **kwargs)

    def complete(self, trial: optuna.Trial, values: list[float], result: TrialResult) -> bool:
        """Told with its values and its constraint values (set first: the sampler's
        ``after_trial`` reads them); returns whether it keeps the space file's constraints."""
        feasible = feasibility.record(trial, self.exp.constraints)
        self.tell(trial, values=values)
        if self.models is not None and "model" in result.extra:
            if feasible:
                self.models.add(trial.number, values)
            else:  # never among the best: its model goes
                self.models.drop(trial.number)
        if "artifacts" in result.extra and self.run_dir is not None:
            if self.artifacts is None:
                self.artifacts = KeptArtifacts(Path(self.run_dir), self.study, adding=trial.number)
            if feasible:
                self.artifacts.add(trial.number, values[0])
            else:  # never the best the report draws
                self.artifacts.drop(trial.number)
        if self._ranks_outputs(trial, result):
            assert self.run_dir is not None and self.exp.ensemble is not None
            if self.outputs is None:
                keep = outputs_kept(self.exp.ensemble)
                self.outputs = KeptArtifacts(
                    Path(self.run_dir),
                    self.study,
                    keep,
                    rundir.OUTPUTS_FILE,
                    attrs.OUTPUTS,
                    trial.number,
                )
            if feasible:
                self.outputs.add(trial.number, values[0])
            else:  # never a member: ``members.ranked`` leaves it out
                self.outputs.drop(trial.number)
        self.drop_checkpoints(trial)
        state = "complete" if feasible else "complete, breaking the constraints"
        self.count(state)
        self.fail_fast.success()
        self.display.trial_done(trial.number, state, values, result)
        return feasible

    def _ranks_outputs(self, trial: optuna.Trial, result: TrialResult) -> bool:
        """Whether ``trial``'s ensemble predictions are kept only when among the best: a
        search trial's; a member trained for the ensemble keeps its own."""
        if "outputs" not in result.extra or self.run_dir is None or self.exp.ensemble is None:
            return False
        return attrs.MEMBER_OF not in internals.user_attrs(trial)

    def pruned(self, trial: optuna.Trial, epoch: int | None) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr("pruned_at_epoch", epoch)
        self.tell(trial, state=TrialState.PRUNED)
        self.drop_checkpoints(trial)
        self.count("pruned")
        self.fail_fast.success()
        self.display.trial_pruned(trial.number, epoch)

    def duplicate(
        self, trial: optuna.Trial, earlier: int, values: list[float], known: bool
    ) -> None:
        """``trial`` repeats ``earlier``'s configuration: told with its values. ``known``:
        the sampler proposed it with that result in the study (counts toward the budget)."""
        set_user_attrs(trial, {attrs.DUPLICATE_OF: earlier, attrs.DUPLICATE_KNOWN: known})
        if self.exp.constraints:  # its twin's verdict (one storage read)
            feasibility.copy(self.study, trial, earlier)
        self.tell(trial, values=values)
        self.count("duplicate" if known else "duplicate (not counted)")
        self.display.trial_duplicate(trial.number, earlier)

    def surplus(self, trial: optuna.Trial) -> None:
        """Asked when other drivers had filled the budget: ended unrun, not counted."""
        from optuna.trial import TrialState

        trial.set_user_attr(attrs.FAILURE, "surplus")
        self.tell(trial, state=TrialState.FAIL)

    def fail(
        self,
        trial: optuna.Trial,
        kind: str,
        error_type: str | None,
        error: str,
        history: Sequence[Mapping[str, float]] = (),
    ) -> None:
        """``history``: its epochs' metrics; a finite objective there before it diverged
        shows that the code runs (fail fast)."""
        from optuna.trial import TrialState

        error_type = error_type or "Error"
        if kind == "disk_full":  # not the configuration's fault: run again, not counted
            self.interrupted(trial, error_type, error)
            return
        set_user_attrs(trial, {attrs.FAILURE: kind, "error_type": error_type, "error": error})
        self.tell(trial, state=TrialState.FAIL)
        if self.models is not None:  # its worker saved its model, then the result was lost
            self.models.drop(trial.number)
        self.count(f"failed ({kind})")
        self.display.trial_done(trial.number, "failed", None, None, error=error, kind=kind)
        if kind == "model":  # not run again: its checkpoints are of no further use
            self.drop_checkpoints(trial)
            if failfast.diverged_after_training(error_type, history, self.exp.metric_names):
                self.fail_fast.success()
            why = self.fail_fast.failure(
                trial.params, trial.distributions, f"{error_type}: {error}"
            )
            if why is not None and self.failing is None:
                self.failing = why  # the summary shows it, once
                n = len(self.fail_fast.failures)
                self.display.log(f"Stopping: the first {n} trials all failed the same way")

    def wrote(self, result: TrialResult) -> None:
        """A trial's result, recorded: the artifacts and predictions of one that did not
        complete go (``complete`` ranks the others'). One that found the run directory's
        disk full or over quota (a checkpoint, its arrays): every later trial would fail
        the same way, or lose its arrays. The campaign stops; the trial is run again (or
        kept, when it completed)."""
        unranked = result.status != "complete" or result.values is None  # e.g. a NaN loss
        if unranked and self.run_dir is not None:  # never the report's, nor a member
            for key, name in (
                ("artifacts", rundir.ARTIFACTS_FILE),
                ("outputs", rundir.OUTPUTS_FILE),
            ):
                if key in result.extra:
                    remove_trial_file(Path(self.run_dir), result.trial_number, name)
        full = result.extra.get(DISK_FULL)
        if full and self.failing is None:
            self.failing, self.stop_reason = f"the run directory's disk is full: {full}", "disk"
            self.display.log(f"Stopping: trial {result.trial_number} found the disk full")

    def interrupted(self, trial: optuna.Trial, error_type: str, why: str) -> None:
        """Stopped by the campaign, not by its fault: queued again and recorded (in this
        order: a kill between the two writes loses no re-run, see ``recovery``)."""
        self.requeue(trial, "stopped")
        self.fail(trial, "interrupted", error_type, why)
        self._drop_arrays(trial.number)

    def worker_lost(
        self, trial: optuna.Trial, error_type: str | None, error: str, started: bool
    ) -> None:
        """Its worker (or its trial process) died; ``started``: it was running then, not
        waiting in the worker's queue. Run again, or blamed when it died too often."""
        error = error[:2000]
        if started:
            self._drop_arrays(trial.number)
        blame = retry.blame(internals.user_attrs(trial), started, self.max_attempts, error)
        if blame is not None:
            self.fail(trial, "model", DIED_REPEATEDLY, blame)
            return
        if not started:
            error += " (queued on that worker, never started: not counted as an attempt)"
        self.requeue(trial, "ran" if started else "queued")
        self.fail(trial, "infrastructure", error_type, error)

    def _drop_arrays(self, number: int) -> None:
        if self.run_dir is not None:
            drop_lost(Path(self.run_dir), number)

    def requeue(self, trial: optuna.Trial, cause: retry.Cause) -> None:
        """Its re-run, queued before it is closed (``recovery.requeue``)."""
        user_attrs = internals.user_attrs(trial)
        # The sampler writes its tags to the storage, not to the trial's own view.
        stored = internals.stored_system_attrs(self.study, trial)
        recovery.requeue(self.study, trial.number, trial.params, dict(user_attrs), cause, stored)

    # -- checkpoints ------------------------------------------------------------------

    def checkpoint_dir(self, trial: optuna.Trial) -> Path | None:
        exp = self.exp
        if self.run_dir is None or exp.budget.checkpoint_every <= 0:
            return None
        if not self.keeps_checkpoints:
            return None
        return rundir.checkpoint_dir(Path(self.run_dir), chain(trial))

    def drop_checkpoints(self, trial: optuna.Trial) -> None:
        path = self.checkpoint_dir(trial)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
