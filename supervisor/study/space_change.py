"""A resumed campaign whose space changed a parameter in a way its study cannot hold.

Optuna keeps one distribution per parameter name in a study: a categorical's choices, or
a parameter's kind (float, int, categorical), cannot change. A resume with such a change
used to start, and every new trial then failed with "sampling failed" (counted as a model
failure, so fail fast stopped the run, and each rerun added failures to the budget). It
is refused before anything is written; ranges and steps may change (Optuna allows it).
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
    return f"{kind} in [{dist.low}, {dist.high}]{scale}"  # type: ignore[attr-defined]
