"""Names of the attributes the supervisor stores with studies and trials.

User-visible trial attributes (reports and exports read them): ``worker``, ``hostname``,
``started``, ``finished``, ``duration_s``, ``metrics``, ``history``, ``error``,
``error_type``, ``traceback``, ``failure``, ``rss_mb``, ``artifacts`` (path of the trial's
``artifacts.npz``, relative to the run directory), ``outputs`` (the same for the
predictions an ensemble uses, ``outputs.npz``), ``duplicate_of`` (the earlier trial whose
values a duplicate configuration was told with), ``pruned_at_epoch``. The ``metrics`` of a
trial hold the model's final metrics and the cost metrics the worker measures
(``train_seconds``, ``node_seconds``, ``n_params``, ``latency_ms``, ``peak_memory_mb``).
Bookkeeping ones are prefixed ``supervisor:``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

# study
CONFIG = "supervisor:config"
OBJECTIVES = "supervisor:objectives"
BENCHMARK = "supervisor:benchmark"
HEARTBEAT_PREFIX = "supervisor:heartbeat:"

# trial
DRIVER = "supervisor:driver"
ATTEMPT = "supervisor:attempt"  # 1 for a first run, n for the (n-1)th re-run of its params
RETRY_OF = "supervisor:retry_of"  # number of the trial whose parameters this one re-runs
FAILURE = "failure"  # "model" | "infrastructure" | "interrupted" | "surplus" (never run)
DUPLICATE_OF = "duplicate_of"  # number of the trial that trained this configuration
SEED = "supervisor:seed"  # the seed a queued trial trains with (ensemble members)
MEMBER_OF = "supervisor:member_of"  # search trial whose configuration a member trains
MEMBER_EPOCHS = "supervisor:member_epochs"  # epochs an ensemble member was queued to train
CARRIED = (SEED, MEMBER_OF, MEMBER_EPOCHS)  # kept by the re-run of an infrastructure failure


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Finished trials the user asked for: complete, pruned, or failed by the model itself.

    Infrastructure failures and interruptions are re-run with the same parameters, so
    they do not use up the budget.
    """
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:
        kind: Any = trial.user_attrs.get(FAILURE, "model")
        return kind == "model"
    return False
