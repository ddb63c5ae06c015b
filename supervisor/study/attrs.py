"""Names of the attributes the supervisor stores with studies and trials.

User-visible trial attributes (reports and exports read them): ``worker``, ``hostname``,
``started``, ``finished``, ``duration_s``, ``metrics``, ``history``, ``error``,
``error_type``, ``traceback``, ``failure``, ``rss_mb``, ``artifacts`` (path of the trial's
``artifacts.npz``, relative to the run directory), ``outputs`` (the same for the
predictions an ensemble uses, ``outputs.npz``; ``model``: its trained model's
``model.npz``, saved for keep_models and removed once not among the best),
``duplicate_of`` (the earlier trial whose values a duplicate configuration was told
with; ``duplicate_known``: whether the sampler proposed it knowing that result, which
counts toward the budget), ``pruned_at_epoch``,
``provenance`` (where it ran: node, batch job, CPU, devices, the cores and GPUs it held,
its seeds and the node settings in force). The
``metrics`` of a trial hold the model's final metrics and the cost metrics the worker measures
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
DEADLINE_PREFIX = "supervisor:deadline:"  # + driver id: Unix time its timeout stops it

# trial
DRIVER = "supervisor:driver"
ATTEMPT = "supervisor:attempt"  # 1 + the worker deaths its parameters ran through
UNSTARTED = "supervisor:unstarted"  # worker deaths its parameters met while queued
RETRY_OF = "supervisor:retry_of"  # number of the trial whose parameters this one re-runs
RERUN_OF = "supervisor:rerun_of"  # number of the trial this one was queued to replace
FAILURE = "failure"  # "model" | "infrastructure" | "interrupted" | "surplus" (never run)
DUPLICATE_OF = "duplicate_of"  # number of the trial that trained this configuration
# With duplicate_of: True when the sampler proposed it with its twin's result in the study
# (a deliberate repeat: it counts toward the budget); False when the twin was still
# training (a blind repeat: not counted, the budget buys another configuration).
DUPLICATE_KNOWN = "duplicate_known"
# "<run>#<number>": a trial of an earlier run told to this study untrained (warm start);
# never counts toward the budget.
WARM_START = "warm_start"
SEED = "supervisor:seed"  # the seed a queued trial trains with (ensemble members)
MEMBER_OF = "supervisor:member_of"  # search trial whose configuration a member trains
MEMBER_EPOCHS = "supervisor:member_epochs"  # epochs an ensemble member was queued to train
# {"options", "inputs", "epochs"}: what an ensemble member is given, its search trial's
# (a resume may have changed the space file's options, fixed values or epochs since).
TRAIN_AS = "supervisor:train_as"
CARRIED = (SEED, MEMBER_OF, MEMBER_EPOCHS, TRAIN_AS)  # kept by the re-run of a stopped trial

# trial, user-visible: written by the driver, read typed by supervisor.study.records
WORKER = "worker"  # Dask address of the worker that ran the trial
HOSTNAME = "hostname"  # node it ran on
STARTED = "started"  # Unix time it started on its worker
FINISHED = "finished"  # Unix time it finished there
DURATION_S = "duration_s"  # seconds it ran on its worker
METRICS = "metrics"  # {name: float}: the model's final metrics and the cost metrics
HISTORY = "history"  # [{"epoch": e, metric: value, ...}], one entry per epoch
DATA_SECONDS = "data_seconds"  # seconds spent loading the data set
RSS_MB = "rss_mb"  # resident memory of the trial process when it finished
ARTIFACTS = "artifacts"  # artifacts.npz, relative to the run directory
ARTIFACTS_ERROR = "artifacts_error"  # why the artifacts could not be saved
OUTPUTS = "outputs"  # outputs.npz (an ensemble's predictions), relative to the run dir
OUTPUTS_ERROR = "outputs_error"  # why the outputs could not be saved
MODEL = "model"  # model.npz (keep_models: its trained model), relative to the run dir
MODEL_ERROR = "model_error"  # why its trained model could not be saved (a full disk)
FROM_MODEL = "from_model"  # an ensemble member: the kept model it loaded, not trained
FROM_MODEL_ERROR = "from_model_error"  # why it trained instead (the file gone, damaged)
RESUMED_FROM_EPOCH = "resumed_from_epoch"  # epoch of the checkpoint it resumed from
PRUNED_AT_EPOCH = "pruned_at_epoch"  # epoch the pruner stopped it after
ERROR = "error"  # one-line error message of a failed trial
ERROR_TYPE = "error_type"  # exception type name (or "DriverLost", "Timeout"...)
TRACEBACK = "traceback"  # the trial process's traceback
# {"node", "host", "cpu", "job": {"system", "job_id"}, "devices", "threads", "ranks",
#  "cores" (it held), "node_cores", "gpus" (it held), "seed", "data_seed", "settings"}
PROVENANCE = "provenance"


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Finished trials the user asked for: complete, pruned, or failed by the model itself.

    Infrastructure failures and interruptions are re-run with the same parameters, so
    they do not use up the budget; nor does a duplicate the sampler proposed blind (its
    twin still training, ``DUPLICATE_KNOWN`` False), which was never trained, nor a trial
    of an earlier run told by warm start.
    """
    from optuna.trial import TrialState

    if WARM_START in trial.user_attrs:
        return False
    if trial.state == TrialState.COMPLETE:
        return trial.user_attrs.get(DUPLICATE_KNOWN) is not False
    if trial.state == TrialState.PRUNED:
        return True
    if trial.state == TrialState.FAIL:
        kind: Any = trial.user_attrs.get(FAILURE, "model")
        return kind == "model"
    return False
