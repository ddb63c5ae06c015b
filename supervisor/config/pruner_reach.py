"""Whether a pruner can stop any trial before its last epoch, with the file's epochs.

A pruner judges each epoch a trial reports (its 0-based index is Optuna's step), but
each Optuna pruner has a first step before which it prunes nothing: ``n_warmup_steps``
(median, percentile, threshold), ``min_resource`` times ``reduction_factor`` to the
``min_early_stopping_rate`` (ASHA; Hyperband's first bracket starts at ``min_resource``),
two steps in common with the best trial (wilcoxon), ``patience`` steps without progress
(patient). A pruner whose first step is the last epoch or later stops no trial early: the
campaign ran with it, trained every trial to its end, and said nothing (a pruned trial
at its last epoch is only left out of the best). The campaign says so when it starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.config.pruners import PRUNERS, WRAPPED

if TYPE_CHECKING:
    from supervisor.config.experiment import Experiment


def _options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The pruner's options with its Optuna class's defaults filled in."""
    import optuna

    cls = getattr(optuna.pruners, PRUNERS[name])
    found = {
        key: p.default
        for key, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**found, **options}


def first_step(name: str, options: Mapping[str, Any], epochs: int) -> tuple[int, str] | None:
    """(the first 0-based epoch at which the pruner may stop a trial, the options that set
    it), or None where it is not known (or the pruner is none)."""
    if name not in PRUNERS or name == "none":
        return None
    opts = _options(name, options)
    if name in ("median", "percentile", "threshold"):
        return int(opts["n_warmup_steps"]), f"n_warmup_steps: {opts['n_warmup_steps']}"
    if name == "wilcoxon":  # two steps in common with the best trial at least
        steps = max(2, int(opts["n_startup_steps"]))
        return steps - 1, f"n_startup_steps: {opts['n_startup_steps']}"
    if name in ("asha", "successive_halving", "hyperband"):
        low = opts["min_resource"]
        if low == "auto":  # Optuna's estimate from a trial trained to its end
            low = max((epochs - 1) // 100, 1) if name != "hyperband" else 1
        if not isinstance(low, int):
            return None
        rate = int(opts.get("min_early_stopping_rate", 0))
        factor = opts["reduction_factor"]
        return low * factor**rate, f"min_resource: {opts['min_resource']}"
    if name == "patient":
        wrapped = opts.get(WRAPPED)
        if isinstance(wrapped, str):
            wrapped = {"name": wrapped}
        inner = None
        if isinstance(wrapped, dict) and isinstance(wrapped.get("name"), str):
            inner = first_step(wrapped["name"], wrapped.get("options") or {}, epochs)
        step, why = int(opts["patience"]), f"patience: {opts['patience']}"
        return (inner[0], inner[1]) if inner and inner[0] > step else (step, why)
    return None


def pruner_note(exp: Experiment) -> str | None:
    """A line for a pruner that can stop no trial before its last epoch, or None."""
    epochs = exp.budget.epochs
    found = first_step(exp.pruner, exp.pruner_options, epochs)
    if found is None or found[0] < epochs - 1:
        return None
    step, why = found
    return (
        f"note: the {exp.pruner} pruner may stop a trial after epoch {step + 1} at the"
        f" earliest ({why}), and trials train {epochs} epoch(s): it stops none early;"
        " lower that option, raise budget.epochs, or leave the pruner out"
    )


def campaign_notes(exp: Experiment, remaining: int, slots: int) -> list[str]:
    """What a campaign says when it starts about its sampler and pruner."""
    from supervisor.config.samplers import sampler_notes

    notes = sampler_notes(exp.sampler, exp.params, remaining, slots)
    pruner = pruner_note(exp)
    return [*notes, pruner] if pruner else notes
