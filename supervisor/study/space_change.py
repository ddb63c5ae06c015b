"""A resumed campaign whose space changed a parameter in a way its study cannot hold.

Optuna keeps one distribution per parameter name in a study: a categorical's choices, or
a parameter's kind (float, int, categorical), cannot change. A resume with such a change
used to start, and every new trial then failed with "sampling failed" (counted as a model
failure, so fail fast stopped the run, and each rerun added failures to the budget). It
is refused before anything is written; ranges and steps may change (Optuna allows it),
except where the sampler models only what every trial holds alike (``unmodelled``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.config.params import ParamSpec

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


def incompatible(study: optuna.Study, params: tuple[ParamSpec, ...]) -> tuple[str, str] | None:
    """(parameter, problem) for the first parameter of ``params`` whose distribution the
    study's trials cannot share, or None."""
    from optuna.distributions import check_distribution_compatibility

    wanted = {spec.name: spec.distribution() for spec in params}
    stored: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if name in wanted and name not in stored:
                stored[name] = dist
        if len(stored) == len(wanted):
            break
    for name, dist in stored.items():
        try:
            check_distribution_compatibility(dist, wanted[name])
        except ValueError:
            return name, (
                f"the study's trials have it as {_shown(dist)}, which Optuna cannot change"
                f" to {_shown(wanted[name])} within a study; keep it, or start a new study"
                " (--study NAME)"
            )
    return None


def _shown(dist: BaseDistribution) -> str:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return f"choices {list(dist.choices)}"
    kind = "an int" if isinstance(dist, IntDistribution) else "a float"
    scale = ", log scale" if getattr(dist, "log", False) else ""
    step = getattr(dist, "step", None)
    scale += f", step {step}" if step not in (None, 1) else ""
    return f"{kind} in [{dist.low}, {dist.high}]{scale}"  # type: ignore[attr-defined]


# Samplers that model only the parameters every complete trial holds with one distribution
# (Optuna's intersection search space) and draw the others at random.
INTERSECTION = frozenset({"turbo", "cmaes", "gp", "nsgaii", "nsgaiii"})


def unmodelled(
    study: optuna.Study, params: tuple[ParamSpec, ...], sampler: str
) -> tuple[str, str] | None:
    """(parameter, problem) for a parameter that the resumed study's complete trials do not
    all hold as this space defines it (a range, step or scale changed, or a parameter new
    to the space), where ``sampler`` models only parameters they all hold alike: it would
    draw that parameter at random for the rest of the campaign (CMA-ES all of them, its
    dimension changed), without a word. None where it models them all."""
    from optuna.trial import TrialState

    if sampler not in INTERSECTION:
        return None
    # Conditional ones are drawn at random by these samplers anyway (said at the start),
    # as CMA-ES draws categorical ones.
    wanted = {
        spec.name: spec.distribution()
        for spec in params
        if not spec.when and not (sampler == "cmaes" and spec.kind == "categorical")
    }
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        for name, dist in wanted.items():
            held = trial.distributions.get(name)
            if held == dist:
                continue
            if held is None:  # a warm start would leave out every trial without it
                what = "complete trials of the study lack it (new to this space)"
                fix = "leave it out (or fixed), or start a new study (--study NAME)"
            else:
                what = f"its trials hold it as {_shown(held)}, this space as {_shown(dist)}"
                fix = (
                    "keep it as it was, or start a new study (--study NAME) with warm_start:"
                    f" {study.study_name} (its trials are fitted to this space)"
                )
            return name, (
                f"{what}; the {sampler} sampler models only parameters every trial holds"
                f" alike, so it would draw {name} at random from now on; {fix}"
            )
    return None
