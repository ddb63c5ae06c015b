"""The campaign journal's replay: Optuna's, with indexes that spare reads of the study a
loop over every trial (``IndexedReplay``)."""

from __future__ import annotations

import array
import threading
from collections.abc import Iterable
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

import supervisor.optuna_internals as internals
from supervisor.optuna_internals import JournalOperation, JournalStorageReplayResult


class IndexedReplay(JournalStorageReplayResult):
    """Optuna's replay of the journal, plus indexes kept as each record is applied, so
    that no read of the study and no record costs a Python loop over every trial:

    * ``listed``: each study's trials in number order (the replay's current objects).
      Optuna's replay builds that list anew, trial by trial, on every read of the study.
    * ``waiting``: the WAITING trials of each study: ``ask`` looks for them before every
      new trial, which otherwise scans every trial of the study.
    * ``finished``: the numbers of each study's trials in the order they finished (or were
      created finished), so that what tracks unfinished trials (``supervisor.unfinished``)
      reads what changed instead of re-checking thousands in flight.
    * ``holders``: a trial holding each parameter (``_apply_set_trial_param``)."""

    def __init__(self, worker_id_prefix: str) -> None:
        super().__init__(worker_id_prefix)
        self.listed: dict[int, list[FrozenTrial]] = {}  # study -> its trials by number
        self.waiting: dict[int, dict[int, None]] = {}  # study -> trial ids, in queue order
        self.finished: dict[int, array.array[int]] = {}  # study -> numbers, as they finished
        self.holders: dict[tuple[int, str], int] = {}  # (study, parameter) -> a trial with it

    @property
    def worker_id(self) -> str:
        """This thread's: the system's id of the thread, 5 to 7 digits where Optuna's
        (``threading.get_ident``) has 15, in every record (``worker_id_prefix``)."""
        return self._worker_id_prefix + str(threading.get_native_id())

    def apply_logs(self, logs: Iterable[dict[str, Any]]) -> None:
        trials = internals.replay_trials(self)
        study_of = internals.replay_study_of(self)
        fresh: FrozenTrial | None = None  # the copy the last record made for an attribute
        for log in logs:
            known = len(trials)
            op = log["op_code"]
            prior = trials.get(log.get("trial_id"))  # type: ignore[arg-type]
            if op == JournalOperation.SET_TRIAL_USER_ATTR and prior is not None and prior is fresh:
                # A trial's next attribute (a result writes some ten in one append): Optuna
                # copies the trial and its attributes for each. The copy the last record
                # made is this call's own, not yet read by anyone: it takes this one too.
                self.log_number_read += 1
                prior.user_attrs.update(log["user_attr"])
                continue
            fresh = None
            try:
                super().apply_logs((log,))
            except UpdateFinishedTrialError:
                if op not in TAKEN_OVER_WRITES:  # a state: the caller learns it lost a race
                    raise
                continue  # see TAKEN_OVER_WRITES; the logs after it are still applied
            if op == JournalOperation.CREATE_TRIAL:
                if len(trials) > known:  # numbered by its position in its study
                    trial, study_id = trials[known], study_of[known]
                    self.listed.setdefault(study_id, []).append(trial)
                    if trial.state == TrialState.WAITING:
                        self.waiting.setdefault(study_id, {})[known] = None
                    elif trial.state.is_finished():
                        self.finished.setdefault(study_id, array.array("q")).append(trial.number)
                continue
            trial_id = log.get("trial_id")
            if not isinstance(trial_id, int) or trial_id not in trials:
                continue  # a study's record, or a trial the replay does not know
            trial, study_id = trials[trial_id], study_of[trial_id]
            before = self.listed[study_id][trial.number].state
            self.listed[study_id][trial.number] = trial  # the replay replaces, not changes
            if op == JournalOperation.SET_TRIAL_USER_ATTR and trial is not prior:
                fresh = trial
            if op == JournalOperation.SET_TRIAL_STATE_VALUES and trial.state != TrialState.WAITING:
                self.waiting.get(study_id, {}).pop(trial_id, None)
                if trial.state.is_finished() and not before.is_finished():
                    self.finished.setdefault(study_id, array.array("q")).append(trial.number)

    def _apply_set_trial_param(self, log: dict[str, Any]) -> None:
        """Optuna's, but the parameter's distribution is checked against one trial of the
        study that holds it (``holders``). Optuna checks it against the first such trial,
        found by crossing every trial before it: for a parameter the first trials lack
        (added on resume, or a conditional one first taken late), every record of it
        costs O(trials), in the driver and in every process that replays the journal.
        The same verdict: the distributions a study holds for a name were each checked
        against one held before, and compatibility (same kind, same log scale, same
        choices) is an equivalence."""
        trial_id, name = log.get("trial_id", -1), log.get("param_name")
        study_id = internals.replay_study_of(self).get(trial_id)
        if study_id is None or not isinstance(name, str):  # Optuna says what is wrong
            internals.apply_set_trial_param(self, log)
            return
        ids = internals.replay_study_trials(self)
        holder = self.holders.get((study_id, name))
        every = ids[study_id]
        ids[study_id] = [] if holder is None else [holder]  # what Optuna's check crosses
        try:
            internals.apply_set_trial_param(self, log)
        finally:
            ids[study_id] = every
        if holder is None and name in internals.replay_trials(self)[trial_id].params:
            self.holders[(study_id, name)] = trial_id


# A driver's writes to a trial another driver closed: it found this driver's heartbeat
# stale (a stalled file system, a paused process) and took its trials over, re-queuing
# each. Optuna ignores such writes of other processes and raises on its own, which
# crashed the driver that came back, mid-batch (its later writes never applied to its
# view). They are dropped; the trial's re-run trains it again.
TAKEN_OVER_WRITES = frozenset(
    {
        JournalOperation.SET_TRIAL_PARAM,
        JournalOperation.SET_TRIAL_USER_ATTR,
        JournalOperation.SET_TRIAL_SYSTEM_ATTR,
        JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
    }
)
