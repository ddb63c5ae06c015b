"""What a validated search-space file describes: the ``Experiment`` a campaign runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.benchmarks import Direction
from supervisor.config.constraints import Constraint
from supervisor.config.ensemble import EnsembleConfig
from supervisor.config.params import ParamSpec, Scalar
from supervisor.config.warm_start import WarmSource
from supervisor.execution.node import NodeSettings


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction


@dataclass(frozen=True)
class Budget:
    trials: int
    epochs: int
    timeout: float | None = None  # seconds
    trial_timeout: float | None = None  # seconds; a trial over it is killed (model failure)
    # Epochs between checkpoints a re-run trial resumes from (0: none). Never after the
    # last epoch, so 1-epoch trials write none.
    checkpoint_every: int = 1
    # Stop when the first this-many trials of a run all fail with one error (0: never).
    fail_fast: int = 5
    # Stop before the budget (no new trials; running ones finish, ``study.stopping``):
    # once a complete trial reaches every ``target`` (objective metric -> value), or once
    # ``patience`` finished trials in a row bettered no best value (0: never).
    target: tuple[tuple[str, float], ...] = ()
    patience: int = 0


@dataclass(frozen=True)
class Experiment:
    file: str
    study_name: str
    benchmark: str
    benchmark_target: str
    options: dict[str, Any]
    objectives: tuple[Objective, ...]
    params: tuple[ParamSpec, ...]  # in dependency order: parents first
    fixed: dict[str, Any]
    sampler: str
    sampler_options: dict[str, Any]
    budget: Budget
    seed: int
    description: str = ""
    node: NodeSettings = field(default_factory=NodeSettings)
    raw: dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    # False: a configuration that already completed is not trained again (see the driver).
    retrain_duplicates: bool = False
    # MPI ranks per trial: data-parallel training at the same global batch
    # (supervisor.execution.ranks).
    ranks: int = 1
    # Build a deep ensemble after the search (supervisor.ensemble); None: no ensemble.
    ensemble: EnsembleConfig | None = None
    # Earlier runs whose finished trials the sampler learns from (supervisor.study.warm_start).
    warm_start: tuple[WarmSource, ...] = ()
    # Configurations trained first, in order; parameters left out are sampled
    # (supervisor.config.enqueue).
    enqueue: tuple[dict[str, Scalar], ...] = ()
    # The trained models of the this-many best complete trials stay in the run directory
    # (supervisor.study.kept_models; 0: none).
    keep_models: int = 0
    # Bounds on measured metrics a trial must keep to count (supervisor.config.constraints).
    constraints: tuple[Constraint, ...] = ()

    @property
    def prunes(self) -> bool:
        return self.pruner != "none"

    @property
    def directions(self) -> list[Direction]:
        return [o.direction for o in self.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def grid(self) -> dict[str, list[Scalar]]:
        """The grid for grid search; every parameter must be finite (checked on load)."""
        return {p.name: p.grid_values() or [] for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment, JSON-serialisable, stored with the study."""
        return {
            "study": self.study_name,
            "benchmark": {"name": self.benchmark, "options": self.options},
            "objectives": [
                {"metric": o.metric, "direction": o.direction} for o in self.objectives
            ],
            "params": {p.name: p.describe() for p in self.params},
            "fixed": self.fixed,
            "sampler": {"name": self.sampler, "options": self.sampler_options},
            "pruner": {"name": self.pruner, "options": self.pruner_options},
            "retrain_duplicates": self.retrain_duplicates,
            "budget": {
                "trials": self.budget.trials,
                "epochs": self.budget.epochs,
                "timeout": self.budget.timeout,
                "trial_timeout": self.budget.trial_timeout,
                "checkpoint_every": self.budget.checkpoint_every,
                "fail_fast": self.budget.fail_fast,
                "target": dict(self.budget.target) or None,
                "patience": self.budget.patience,
            },
            "seed": self.seed,
            "node": self.node.to_dict(),
            "ranks": self.ranks,
            "ensemble": self.ensemble.to_dict() if self.ensemble else None,
            "warm_start": [w.to_dict() for w in self.warm_start],
            "enqueue": [dict(e) for e in self.enqueue],
            "keep_models": self.keep_models,
            "constraints": {c.metric: c.to_dict() for c in self.constraints},
            # The space file as validated: later commands (supervisor ensemble) rebuild
            # this experiment from it, not from a file the user may have edited since.
            "source": _json(self.raw),
        }


def _json(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as JSON keeps it (what a study attribute can hold)."""
    import json

    loaded: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return loaded
