"""Stopping a campaign before its budget: a target reached, or no progress for a while.

``budget.target`` ends a campaign once a complete trial reaches every target value (the
allocation is not spent on a question already answered); ``budget.patience`` once that
many finished trials in a row bettered no best value (a converged search). Then no new
trial starts and the running ones finish, as at the timeout; a resume of a stopped
campaign stops at once, and ``supervisor status`` (and the driver chain of ``submit``)
count nothing left.

Trials are judged in the order they finished, over the study (every driver's, earlier
runs' too), as the budget counts them (``attrs.counts_toward_budget``: warm-start trials
and infrastructure failures are not this campaign's progress; a duplicate, told a value
already known, counts as a finished trial that reached and bettered nothing, as does one
that breaks the space file's constraints, ``supervisor.study.feasibility``). Optuna's
``terminator.BestValueStagnationEvaluator`` answers the same question as ``patience`` but
re-reads every trial per call; this keeps two numbers, fed with the trials each look of
the driver finds finished. A ``supervisor stop`` request (``stop_request``) ends it the
same way (with ``--now`` the running trials are cancelled too).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from supervisor.study import attrs, feasibility, stop_request

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.config.experiment import Experiment

EarlyStop = Literal["target", "patience", "requested"]


@dataclass(frozen=True)
class StopRule:
    directions: tuple[str, ...]  # "minimize" / "maximize", per objective
    target: tuple[tuple[int, float], ...] = ()  # (objective index, value)
    patience: int = 0

    @classmethod
    def of(cls, budget: Mapping[str, Any], objectives: Sequence[tuple[str, str]]) -> StopRule:
        """From a stored budget (``Experiment.to_dict``) and (metric, direction) pairs; a
        rule it cannot read is no rule (a study written before these keys)."""
        names = [metric for metric, _ in objectives]
        target = budget.get("target") if isinstance(budget.get("target"), dict) else {}
        pairs = tuple(
            (names.index(m), float(v))
            for m, v in (target or {}).items()
            if m in names and isinstance(v, int | float) and not isinstance(v, bool)
        )
        patience = budget.get("patience", 0)
        ok = isinstance(patience, int) and not isinstance(patience, bool) and patience > 0
        return cls(tuple(d for _, d in objectives), pairs, patience if ok else 0)

    @classmethod
    def of_experiment(cls, exp: Experiment) -> StopRule:
        objectives = [(o.metric, o.direction) for o in exp.objectives]
        budget = {"target": dict(exp.budget.target), "patience": exp.budget.patience}
        return cls.of(budget, objectives)

    @property
    def active(self) -> bool:
        return bool(self.target) or self.patience > 0


class Stopping:
    """The rule's state over the trials seen so far; ``reached`` once it says stop."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.best: float | None = None  # of the first objective
        self.best_number: int | None = None
        self.since_best = 0  # finished trials since the best one (or since the start)
        self.reached: EarlyStop | None = None
        self.why = ""
        # ``supervisor stop`` requests made since (``stop_request``); --now: cancel too.
        self.since = time.time()
        self.now = False

    def poll(self, study: optuna.Study) -> None:
        """Take a ``supervisor stop`` request made since this driver started."""
        if self.reached:
            return
        request = stop_request.read(study)
        if request is not None and request.at >= self.since:
            self.now = request.mode == "now"
            self._stop("requested", request.line())

    def saw(self, trials: Iterable[FrozenTrial]) -> None:
        """Take trials found finished (in any order: judged in the order they finished)."""
        if not self.rule.active or self.reached:
            return
        for t in sorted(trials, key=_finished_at):
            if attrs.counts_toward_budget(t):
                self._judge(t)
                if self.reached:
                    return

    def _judge(self, t: FrozenTrial) -> None:
        from optuna.trial import TrialState

        values = list(t.values) if t.state == TrialState.COMPLETE and t.values else None
        if attrs.DUPLICATE_OF in t.user_attrs:  # told a known value (maybe a warm-start
            values = None  # trial's, which never counts): a finished trial, nothing new
        if values is not None and not feasibility.feasible(t):  # breaks a constraint: as
            values = None  # a duplicate, a finished trial that reached and bettered nothing
        if (
            values is not None
            and self.rule.target
            and all(
                _reaches(values[i], goal, self.rule.directions[i]) for i, goal in self.rule.target
            )
        ):
            shown = ", ".join(f"{values[i]:.6g} (target {goal:g})" for i, goal in self.rule.target)
            self._stop("target", f"target reached by trial {t.number}: {shown}")
            return
        if not self.rule.patience:
            return
        if values is not None and self._better(values[0]):
            self.best, self.best_number, self.since_best = values[0], t.number, 0
            return
        self.since_best += 1
        if self.since_best >= self.rule.patience:
            best = "no complete trial" if self.best is None else f"best {self.best:.6g}"
            at = "" if self.best_number is None else f" (trial {self.best_number})"
            self._stop(
                "patience", f"no better trial in the last {self.since_best} finished: {best}{at}"
            )

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.rule.directions[0] == "maximize" else value < self.best

    def _stop(self, reason: EarlyStop, why: str) -> None:
        self.reached, self.why = reason, why


def stopped_early(
    budget: Mapping[str, Any], objectives: Sequence[tuple[str, str]], trials: Iterable[FrozenTrial]
) -> str | None:
    """Why a stored campaign's rule says it is done (``supervisor status``), or None."""
    stopping = Stopping(StopRule.of(budget, objectives))
    stopping.saw(trials)
    return stopping.why or None


def _reaches(value: float, goal: float, direction: str) -> bool:
    return value >= goal if direction == "maximize" else value <= goal


def _finished_at(t: FrozenTrial) -> tuple[datetime, int]:
    return (t.datetime_complete or datetime.max, t.number)
