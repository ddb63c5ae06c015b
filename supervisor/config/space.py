"""Search-space file -> a validated ``Experiment``. Nothing runs before this succeeds.

Every problem is raised as a ``SpaceError`` naming the file, line, key path and what was
expected. The format is documented in the README; ``search_spaces/`` has examples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supervisor.benchmarks import (
    Benchmark,
    Direction,
    OptionError,
    ensemble_problem,
    provides,
    registry,
)
from supervisor.benchmarks.trust import ForeignCode
from supervisor.benchmarks.values import storable_problem
from supervisor.config import ensemble as ensemble_config
from supervisor.config import samplers
from supervisor.config.algorithms import read_pruner, read_sampler
from supervisor.config.constraints import check_sampler, read_constraints
from supervisor.config.enqueue import grid_problem as enqueue_grid_problem
from supervisor.config.enqueue import read_enqueue
from supervisor.config.ensemble import EnsembleConfig
from supervisor.config.experiment import Budget, Experiment, Objective
from supervisor.config.param_reader import PARAM_KEYS, PARAM_NAME, grid_problem, read_params
from supervisor.config.params import ParamSpec
from supervisor.config.reader import Reader, kind_of
from supervisor.config.rehearsal import rehearse
from supervisor.config.warm_start import read_warm_start
from supervisor.config.yaml_source import KeyPath, parse_yaml, read_yaml
from supervisor.errors import UserError, did_you_mean
from supervisor.execution.node import PRECISIONS, XLA_CHOICES, NodeSettings

__all__ = [
    "COST_METRICS",
    "PARAM_KEYS",
    "PARAM_NAME",
    "Budget",
    "Experiment",
    "Objective",
    "load",
    "loads",
    "space_text",
]

# Metrics the supervisor measures for every trial, whatever the benchmark.
COST_METRICS: dict[str, Direction] = {
    "train_seconds": "minimize",  # wall time of fit()
    "node_seconds": "minimize",  # cores given to the trial x train_seconds
    "n_params": "minimize",  # trainable + non-trainable parameters of the model
    "latency_ms": "minimize",  # per sample of predict() on a batch of validation inputs
    "peak_memory_mb": "minimize",  # RSS high-water mark of the trial's process
}

MAX_KEPT = 10_000  # keep_models: trained models kept at most

TOP_KEYS = (
    "study",
    "description",
    "benchmark",
    "objectives",
    "params",
    "fixed",
    "sampler",
    "pruner",
    "retrain_duplicates",
    "budget",
    "seed",
    "node",
    "ranks",
    "ensemble",
    "warm_start",
    "enqueue",
    "keep_models",
    "constraints",
)
BUDGET_KEYS = (
    *("trials", "timeout", "epochs", "trial_timeout", "checkpoint_every", "fail_fast"),
    *("target", "patience"),
)
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_TRIALS = 10_000_000
MAX_EPOCHS = 100_000
MAX_RANKS = 1024


def load(path: str | Path, study_name: str | None = None) -> Experiment:
    """Read and validate a search-space file. Raises SpaceError / UserError."""
    return SpaceParser(read_yaml(path)).parse(study_name)


def space_text(data: Mapping[str, Any]) -> str:
    """A space given as a mapping (the Python API), as the YAML of a space file."""
    import yaml

    from supervisor.config.plain import plain

    try:
        return yaml.safe_dump(plain(data), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise UserError(f"space: not plain YAML data ({str(exc).splitlines()[0]})") from None


def loads(text: str, name: str, study_name: str | None = None) -> Experiment:
    """Validate a space file's content, read from elsewhere; ``name`` appears in errors."""
    return SpaceParser(parse_yaml(text, name)).parse(study_name)


class SpaceParser(Reader):
    # -- sections ---------------------------------------------------------------------

    def parse(self, study_override: str | None) -> Experiment:
        top = self.mapping(self.src.data, (), TOP_KEYS)
        for required in ("benchmark", "params", "budget"):
            if required not in top:
                raise self.err((), f"missing required key {required!r}")
        study = self.study(top, study_override)
        description = top.get("description", "")
        if not isinstance(description, str):
            raise self.err(("description",), f"expected a string, got {kind_of(description)}")
        bench, target, cls, options = self.benchmark(top["benchmark"])
        objectives = self.objectives(top.get("objectives"), bench, cls)
        known, predicts = {**cls.metrics, **COST_METRICS}, provides(cls, "predict")
        constraints = read_constraints(self, top.get("constraints"), known, bench, predicts)
        params = read_params(self, top["params"])
        fixed = self.fixed(top.get("fixed", {}), params)
        self.hyper_parameters(cls, params, fixed)
        budget = self.budget(top["budget"], objectives)
        seed = self.integer(top.get("seed", 0), ("seed",), 0, 2**32 - 1)
        node_settings = self.node(top.get("node", {}))
        ranks = self.ranks(top.get("ranks", 1), cls)
        ensemble = self.ensemble(top.get("ensemble"), cls)
        warm = read_warm_start(self, top.get("warm_start"), {p.name for p in params})
        enqueue = read_enqueue(self, top.get("enqueue"), params, fixed)
        keep_models = self.integer(top.get("keep_models", 0), ("keep_models",), 0, MAX_KEPT)
        pruner, pruner_options = read_pruner(self, top.get("pruner", "none"), objectives)
        conditional = any(p.when for p in params)
        default = samplers.default_sampler(
            conditional, len(objectives), pruner != "none", bool(constraints)
        )
        sampler, sampler_options = read_sampler(self, top.get("sampler", default), len(objectives))
        check_sampler(self, sampler, constraints)
        retrain = top.get("retrain_duplicates", False)
        if not isinstance(retrain, bool):
            raise self.err(
                ("retrain_duplicates",), f"expected true or false, got {kind_of(retrain)}"
            )
        if samplers.SAMPLERS[sampler].needs_grid:
            no_grid = grid_problem(params) or enqueue_grid_problem(enqueue)
            if no_grid:
                raise self.err(*no_grid)
        directions = [o.direction for o in objectives]
        fails = rehearse((sampler, sampler_options), (pruner, pruner_options), params, directions)
        if fails:
            raise self.err(*fails)
        return Experiment(
            file=self.src.file,
            study_name=study,
            benchmark=bench,
            benchmark_target=target,
            options=options,
            objectives=objectives,
            params=params,
            fixed=fixed,
            sampler=sampler,
            sampler_options=sampler_options,
            budget=budget,
            seed=seed,
            description=description,
            node=node_settings,
            raw=top,
            pruner=pruner,
            pruner_options=pruner_options,
            retrain_duplicates=retrain,
            ranks=ranks,
            ensemble=ensemble,
            warm_start=warm,
            enqueue=enqueue,
            keep_models=keep_models,
            constraints=constraints,
        )

    def study(self, top: dict[str, Any], override: str | None) -> str:
        """The study name: ``--study``, else the file's ``study`` (written, it must be a
        name: ``""``, ``0`` or ``false`` are refused, not replaced), else the file name."""
        expected = "expected a name of letters, digits, '_', '.', '-' (at most 128)"
        if override is not None:
            if not STUDY_NAME.fullmatch(override):
                raise UserError(f"--study {override[:140]!r}: {expected}")
            return override
        if "study" not in top:
            stem = Path(self.src.file).stem
            if self.src.file.startswith("<"):  # a mapping (the Python API): no file name
                raise self.err((), "missing key 'study' (or give search(..., study=NAME))")
            if not STUDY_NAME.fullmatch(stem):
                raise self.err((), f"no 'study' and the file name {stem!r} is no study name")
            return stem
        study = top["study"]
        if not isinstance(study, str) or not STUDY_NAME.fullmatch(study):
            raise self.err(("study",), f"{expected}, got {study!r}")
        return study

    def benchmark(self, value: Any) -> tuple[str, str, type[Benchmark], dict[str, Any]]:
        """The benchmark's name, target, class (imported here, on the driver, and checked
        against the plugin contract) and resolved options."""
        path: KeyPath = ("benchmark",)
        if isinstance(value, str):
            value = {"name": value}
        spec = self.mapping(value, path, ("name", "options"))
        name = self.string(spec.get("name"), (*path, "name"))
        try:
            target = registry.target(name)
            cls = registry.load(target)
        except ForeignCode:  # another user's run: said about the run, not its space
            raise
        except UserError as exc:  # PluginError: unknown, unloadable or not a Benchmark
            raise self.err((*path, "name"), str(exc)) from None
        taken = sorted(set(cls.metrics) & set(COST_METRICS))
        if taken:
            raise self.err(
                (*path, "name"),
                f"benchmark {name!r} returns the metric {taken[0]!r}, which the supervisor"
                " measures itself; the plugin must name it otherwise",
            )
        raw_options = spec.get("options", {})
        if not isinstance(raw_options, dict):
            raise self.err((*path, "options"), f"expected a mapping, got {kind_of(raw_options)}")
        try:
            options = cls.validate_options(raw_options)
        except OptionError as exc:
            hint = did_you_mean(exc.key, cls.options) if exc.key not in cls.options else ""
            known = (
                f"; known: {', '.join(cls.options) or 'none'}"
                if exc.key not in cls.options
                else ""
            )
            raise self.err((*path, "options", exc.key), exc.message + hint + known) from None
        found = storable_problem(options)
        if found:
            raise self.err((*path, "options", *found[0]), found[1])
        return name, target, cls, options

    def objectives(self, value: Any, bench: str, cls: type[Benchmark]) -> tuple[Objective, ...]:
        path: KeyPath = ("objectives",)
        metrics: dict[str, Direction] = dict(cls.metrics)
        known = {**metrics, **COST_METRICS}
        if value is None:
            first = next(iter(metrics))
            return (Objective(first, metrics[first]),)
        if isinstance(value, str | dict):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.err(path, f"expected a non-empty list of objectives, got {kind_of(value)}")
        out: list[Objective] = []
        for i, item in enumerate(value):
            here = (*path, i)
            if isinstance(item, str):
                item = {"metric": item}
            spec = self.mapping(item, here, ("metric", "direction"))
            metric = self.string(spec.get("metric"), (*here, "metric"))
            if metric not in known:
                raise self.err(
                    (*here, "metric"),
                    f"benchmark {bench!r} has no metric {metric!r}{did_you_mean(metric, known)};"
                    f" known: {', '.join(known)}",
                )
            direction = spec.get("direction", known[metric])
            if direction not in ("minimize", "maximize"):  # narrows to Direction
                raise self.err(
                    (*here, "direction"), f"expected minimize or maximize, got {direction!r}"
                )
            if any(o.metric == metric for o in out):
                raise self.err((*here, "metric"), f"objective {metric!r} is listed twice")
            if metric == "latency_ms" and not provides(cls, "predict"):
                raise self.err(
                    (*here, "metric"),
                    f"latency_ms is measured with predict(), which benchmark {bench!r}"
                    " does not implement",
                )
            out.append(Objective(metric, direction))
        return tuple(out)

    def fixed(self, value: Any, params: tuple[ParamSpec, ...]) -> dict[str, Any]:
        path: KeyPath = ("fixed",)
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping of parameter -> value, got {kind_of(value)}")
        names = {p.name for p in params}
        for key, v in value.items():
            if key in names:
                raise self.err((*path, key), "is also a searched parameter under 'params'")
            if not PARAM_NAME.fullmatch(key):
                raise self.err(
                    (*path, key), "parameter names are identifiers (letters, digits, _)"
                )
            found = storable_problem(v)
            if found:
                raise self.err((*path, key, *found[0]), found[1])
        return dict(value)

    def hyper_parameters(
        self, cls: type[Benchmark], params: tuple[ParamSpec, ...], fixed: dict[str, Any]
    ) -> None:
        """Names and values the benchmark's model would refuse (``check_param``), refused
        here: a range is checked at its two ends, a categorical at every choice."""
        values: list[tuple[KeyPath, str, Any]] = [(("fixed", k), k, v) for k, v in fixed.items()]
        for p in params:
            ends = p.choices if p.kind == "categorical" else (p.low, p.high)
            values += [(("params", p.name), p.name, v) for v in ends]
        for path, name, value in values:
            try:
                cls.check_param(name, value)
            except ValueError as exc:
                raise self.err(path, str(exc)) from None

    def budget(self, value: Any, objectives: tuple[Objective, ...]) -> Budget:
        path: KeyPath = ("budget",)
        spec = self.mapping(value, path, BUDGET_KEYS)
        if "trials" not in spec:
            raise self.err(path, "missing 'trials' (how many trials to run)")
        trials = self.integer(spec["trials"], (*path, "trials"), 1, MAX_TRIALS)
        epochs = self.integer(spec.get("epochs", 1), (*path, "epochs"), 1, MAX_EPOCHS)
        timeout = spec.get("timeout")
        seconds = None if timeout is None else self.duration(timeout, (*path, "timeout"))
        limit = spec.get("trial_timeout")
        per_trial = None if limit is None else self.duration(limit, (*path, "trial_timeout"))
        every = self.integer(
            spec.get("checkpoint_every", 1), (*path, "checkpoint_every"), 0, MAX_EPOCHS
        )
        fail_fast = self.integer(spec.get("fail_fast", 5), (*path, "fail_fast"), 0, MAX_TRIALS)
        patience = self.integer(spec.get("patience", 0), (*path, "patience"), 0, MAX_TRIALS)
        if patience and len(objectives) > 1:
            raise self.err(
                (*path, "patience"),
                "needs a single objective: with several there is no one best value to better",
            )
        return Budget(
            trials=trials,
            epochs=epochs,
            timeout=seconds,
            trial_timeout=per_trial,
            checkpoint_every=every,
            fail_fast=fail_fast,
            target=self.target(spec.get("target"), objectives),
            patience=patience,
        )

    def target(
        self, value: Any, objectives: tuple[Objective, ...]
    ) -> tuple[tuple[str, float], ...]:
        """``budget.target``: a number (one objective) or objective metric -> value."""
        path: KeyPath = ("budget", "target")
        if value is None:
            return ()
        if not isinstance(value, dict):
            if len(objectives) > 1:
                raise self.err(
                    path, "with several objectives give a mapping of objective metric -> value"
                )
            return ((objectives[0].metric, float(self.number(value, path))),)
        metrics = [o.metric for o in objectives]
        if not value:
            raise self.err(path, "expected at least one objective metric -> value")
        for key in value:
            if key not in metrics:
                raise self.err(
                    (*path, key), f"not an objective; expected one of {', '.join(metrics)}"
                )
        return tuple((m, float(self.number(value[m], (*path, m)))) for m in metrics if m in value)

    def ranks(self, value: Any, cls: type[Benchmark]) -> int:
        ranks = self.integer(value, ("ranks",), 1, MAX_RANKS)
        if ranks > 1 and not cls.supports_ranks:
            raise self.err(("ranks",), "this benchmark does not support ranks > 1")
        return ranks

    def ensemble(self, value: Any, cls: type[Benchmark]) -> EnsembleConfig | None:
        path: KeyPath = ("ensemble",)
        if value is None or value is False:
            return None
        problem = ensemble_problem(cls)
        if problem:
            raise self.err(path, problem)
        if value is True:
            return EnsembleConfig()
        spec = self.mapping(value, path, ensemble_config.KEYS)
        select = spec.get("select", EnsembleConfig.select)
        if select not in ensemble_config.SELECTIONS:
            raise self.err(
                (*path, "select"),
                f"expected one of {', '.join(ensemble_config.SELECTIONS)}, got {select!r}"
                f"{did_you_mean(str(select), ensemble_config.SELECTIONS)}",
            )
        size = self.integer(
            spec.get("size", EnsembleConfig.size), (*path, "size"), 1, ensemble_config.MAX_SIZE
        )
        pool = self.integer(
            spec.get("pool", max(EnsembleConfig.pool, size)), (*path, "pool"), 1, MAX_TRIALS
        )
        candidates = self.integer(
            spec.get("candidates", 1), (*path, "candidates"), 1, ensemble_config.MAX_SIZE
        )
        if candidates > 1 and select != "seeds":
            raise self.err((*path, "candidates"), "applies to select: seeds only")
        return EnsembleConfig(select=select, size=size, pool=pool, candidates=candidates)

    def node(self, value: Any) -> NodeSettings:
        path: KeyPath = ("node",)
        spec = self.mapping(value, path, ("xla", "precision"))
        xla = spec.get("xla", "auto")
        if isinstance(xla, bool):  # `xla: true` reads naturally in YAML
            xla = "on" if xla else "off"
        if xla not in XLA_CHOICES:
            raise self.err((*path, "xla"), f"expected auto, on or off, got {xla!r}")
        precision = spec.get("precision", "auto")
        if precision not in PRECISIONS:
            raise self.err(
                (*path, "precision"),
                f"expected one of {', '.join(PRECISIONS)}, got {precision!r}"
                f"{did_you_mean(str(precision), PRECISIONS)}",
            )
        return NodeSettings(xla=xla, precision=precision)
