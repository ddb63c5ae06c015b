"""What a campaign run ends with (``Summary``), and what the driver stores from a result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from supervisor.study import recovery, signals

if TYPE_CHECKING:
    from supervisor.execution.trial import TrialResult

# budget: the study holds the requested number of finished trials; timeout: the space
# file's limit; interrupt: a signal (``Summary.signal``); failing: fail fast
# (``supervisor.study.failfast``); target, patience: ``budget.target`` / ``patience``
# (``supervisor.study.stopping``); cluster: no trial can run there (``Driver.watch``).
# requested: ``supervisor stop`` (``supervisor.study.stop_request``); disk: a trial found
# the run directory's disk full or over quota (``Recorder.wrote``).
StopReason = Literal[
    "budget",
    "timeout",
    "interrupt",
    "failing",
    "target",
    "patience",
    "cluster",
    "requested",
    "disk",
]
# Stops that cancel the trials in flight: no more training is wanted, or none can work.
CANCELLING: tuple[StopReason, ...] = ("interrupt", "failing", "cluster", "disk")


@dataclass
class Summary:
    requested: int
    finished: int  # trials that count toward the budget, this run and earlier ones
    stopped_by: StopReason
    elapsed: float
    recovered: recovery.Recovered
    states: dict[str, int] = field(default_factory=dict)  # this run: outcome -> count
    signal: str | None = None  # the signal that stopped it: SIGINT, SIGTERM or SIGUSR1
    failure: str | None = None  # fail fast's error, or why the cluster can run no trial
    early: str = ""  # target, patience: what the rule saw

    @property
    def exit_code(self) -> int:
        """0 when the run did what it was asked (the budget, the space file's timeout,
        target, patience or a ``supervisor stop``); 128 + the signal's number when one
        stopped it (130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1), as a shell reports it; 1 when
        the model failed fast; 2 when the cluster can run no trial (its batch system
        refuses the worker jobs: the profile is wrong)."""
        if self.stopped_by == "interrupt":
            return signals.exit_code(self.signal or "SIGINT")
        if self.stopped_by in ("failing", "disk"):  # the outside world failed: exit 1
            return 1
        if self.stopped_by == "cluster":
            return 2
        if self.stopped_by == "budget" and self.finished < self.requested:
            return 1  # never happens: the driver waits for the budget; never claim it
        return 0


def stop_cause(stopped_by: StopReason | None, signal: str | None) -> str:
    """Why the trials in flight were cancelled, as each of them records it."""
    if stopped_by == "failing":
        return "the campaign stopped: its first trials all failed the same way"
    if stopped_by == "cluster":
        return "the campaign stopped: its cluster can run no trial"
    if stopped_by == "disk":
        return "the campaign stopped: the run directory's disk is full"
    if stopped_by == "requested":
        return "stopped by supervisor stop --now"
    if signal in (None, "SIGINT"):
        return "stopped by the user (Ctrl-C)"
    return f"stopped by {signal}"


# Attributes of a result the worker measured, stored as they are when present.
# ``provenance``: where it ran, its share of the node, its seeds and node settings;
# ``latency_error``, ``n_params_error``: why a measurement was left out of the metrics;
# ``model``: that its worker saved its trained model (``keep_models``: the file is this
# trial's, not one a reused run directory held); ``model_error``: why it did not;
# ``from_model``: the kept model an ensemble member loaded instead of training (or why not).
_EXTRA = (
    *("rss_mb", "artifacts", "artifacts_error", "outputs", "outputs_error", "provenance"),
    *("latency_error", "n_params_error", "model", "model_error"),
    *("from_model", "from_model_error"),
)


def result_attrs(result: TrialResult, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The user attributes a trial's result adds to those already ``stored`` (the
    stream's worker and hostname are not written again)."""
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
    for key in (*_EXTRA, "resumed_from_epoch"):
        if key in result.extra:
            values[key] = result.extra[key]
    if result.traceback:
        values["traceback"] = result.traceback
    return {k: v for k, v in values.items() if k not in stored or stored[k] != v}
