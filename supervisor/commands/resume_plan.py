"""What a resume would run, for ``validate``, ``search --dry-run`` and ``submit --dry-run``:
the trials its budget still needs and the ``enqueue:`` entries not yet in its study.

Both said what a new run would do: on a run with 5 of its 7 trials finished, "would run
7 trials", and every ``enqueue:`` configuration "trained first" though the study held
them (a resume queues only the others, ``supervisor.study.enqueue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from supervisor.config.experiment import Experiment


@dataclass(frozen=True)
class ResumePlan:
    finished: int  # trials that count toward the budget (``attrs.counts_toward_budget``)
    queued: int  # ``enqueue:`` entries the resume queues (those no trial holds yet)


def resume_plan(study: optuna.Study, exp: Experiment) -> ResumePlan:
    """Read ``study`` (the run a search resumes) as the driver and ``enqueue`` would."""
    from supervisor.study import attrs
    from supervisor.study.enqueue import missing

    trials = study.get_trials(deepcopy=False)
    finished = sum(1 for t in trials if t.state.is_finished() and attrs.counts_toward_budget(t))
    return ResumePlan(finished, len(missing(trials, exp.enqueue)))


def would_run(exp: Experiment, plan: ResumePlan | None, where: str) -> str:
    """The ``would run`` line: the budget of a new run, what a resume still needs of it."""
    budget = exp.budget.trials
    if plan is None:
        return f"would run   {budget} trials on {where}"
    if plan.finished >= budget:
        return (
            f"would run   no trial on {where}; {plan.finished} of {budget} finished already:"
            " raise budget.trials or --trials to search on"
        )
    left = budget - plan.finished
    return f"would run   {left} of {budget} trials on {where}; {plan.finished} finished already"
