"""Search-space file -> a validated ``Experiment``. Nothing runs before this succeeds.

Every problem is raised as a ``SpaceError`` naming the file, line, key path and what was
expected. The format is documented in the README; ``search_spaces/`` has examples.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supervisor.benchmarks import Direction, registry
from supervisor.config import ensemble as ensemble_config
from supervisor.config import samplers
from supervisor.config.algorithms import read_pruner, read_sampler
from supervisor.config.ensemble import EnsembleConfig
from supervisor.config.experiment import Budget, Experiment, Objective
from supervisor.config.params import ParamKind, ParamSpec, Scalar
from supervisor.config.reader import Reader, kind_of
from supervisor.config.warm_start import read_warm_start
from supervisor.config.yaml_source import KeyPath, parse_yaml, read_yaml
from supervisor.errors import UserError, did_you_mean
from supervisor.execution.node import PRECISIONS, XLA_CHOICES, NodeSettings

__all__ = ["COST_METRICS", "Budget", "Experiment", "Objective", "load", "loads", "space_text"]

# Metrics the supervisor measures for every trial, whatever the benchmark.
COST_METRICS: dict[str, Direction] = {
    "train_seconds": "minimize",  # wall time of fit()
    "node_seconds": "minimize",  # cores given to the trial x train_seconds
    "n_params": "minimize",  # trainable + non-trainable parameters of the model
    "latency_ms": "minimize",  # per sample of predict() on a batch of validation inputs
    "peak_memory_mb": "minimize",  # RSS high-water mark of the trial's process
}

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
)
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "when")
BUDGET_KEYS = ("trials", "timeout", "epochs", "trial_timeout", "checkpoint_every", "fail_fast")
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_TRIALS = 10_000_000
MAX_EPOCHS = 100_000
MAX_RANKS = 1024


def load(path: str | Path, study_name: str | None = None) -> Experiment:
    """Read and validate a search-space file. Raises SpaceError / UserError."""
    return SpaceParser(read_yaml(path)).parse(study_name)


def space_text(data: Mapping[str, Any]) -> str:
    """A space given as a mapping (the Python API), as the YAML of a space file."""
    import yaml

    try:
        return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
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
        study = study_override or top.get("study") or Path(self.src.file).stem
        if not isinstance(study, str) or not STUDY_NAME.fullmatch(study):
            raise self.err(
                ("study",),
                f"expected a name of letters, digits, '_', '.', '-' (at most 128), got {study!r}",
            )
        description = top.get("description", "")
        if not isinstance(description, str):
            raise self.err(("description",), f"expected a string, got {kind_of(description)}")
        bench, target, metrics, options = self.benchmark(top["benchmark"])
        objectives = self.objectives(top.get("objectives"), bench, metrics)
        params = self.params(top["params"])
        fixed = self.fixed(top.get("fixed", {}), params)
        budget = self.budget(top["budget"])
        seed = self.integer(top.get("seed", 0), ("seed",), 0, 2**32 - 1)
        node_settings = self.node(top.get("node", {}))
        ranks = self.ranks(top.get("ranks", 1), target)
        ensemble = self.ensemble(top.get("ensemble"), target)
        warm = read_warm_start(self, top.get("warm_start"), {p.name for p in params})
        sampler, sampler_options = read_sampler(self, top.get("sampler", "tpe"), len(objectives))
        pruner, pruner_options = read_pruner(self, top.get("pruner", "none"), objectives)
        retrain = top.get("retrain_duplicates", False)
        if not isinstance(retrain, bool):
            raise self.err(
                ("retrain_duplicates",), f"expected true or false, got {kind_of(retrain)}"
            )
        if samplers.SAMPLERS[sampler].needs_grid:
            for p in params:
                if p.grid_values() is None:
                    raise self.err(
                        ("params", p.name),
                        "grid search needs a finite parameter: give a float a 'step'",
                    )
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
        )

    def benchmark(self, value: Any) -> tuple[str, str, dict[str, Direction], dict[str, Any]]:
        path: KeyPath = ("benchmark",)
        if isinstance(value, str):
            value = {"name": value}
        spec = self.mapping(value, path, ("name", "options"))
        name = self.string(spec.get("name"), (*path, "name"))
        try:
            target = registry.target(name)
        except UserError as exc:
            raise self.err((*path, "name"), str(exc)) from None
        try:
            cls = registry.load(target)
        except (ImportError, AttributeError) as exc:
            raise self.err((*path, "name"), f"cannot load benchmark {name!r}: {exc}") from None
        raw_options = spec.get("options", {})
        if not isinstance(raw_options, dict):
            raise self.err((*path, "options"), f"expected a mapping, got {kind_of(raw_options)}")
        from supervisor.benchmarks import OptionError

        try:
            options = cls.validate_options(raw_options)
        except OptionError as exc:
            hint = did_you_mean(exc.key, cls.options) if exc.key not in cls.options else ""
            known = f"; known: {', '.join(cls.options)}" if exc.key not in cls.options else ""
            raise self.err((*path, "options", exc.key), exc.message + hint + known) from None
        return name, target, dict(cls.metrics), options

    def objectives(
        self, value: Any, bench: str, metrics: dict[str, Direction]
    ) -> tuple[Objective, ...]:
        path: KeyPath = ("objectives",)
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
            out.append(Objective(metric, direction))
        return tuple(out)

    def params(self, value: Any) -> tuple[ParamSpec, ...]:
        path: KeyPath = ("params",)
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping of parameter names, got {kind_of(value)}")
        specs: dict[str, ParamSpec] = {}
        for name, raw in value.items():
            here = (*path, name)
            if not PARAM_NAME.fullmatch(name):
                raise self.err(here, "parameter names are identifiers (letters, digits, _)")
            specs[name] = self.param(name, raw, here)
        for name, spec in specs.items():
            for parent, allowed in spec.when.items():
                where = ("params", name, "when", parent)
                if parent == name:
                    raise self.err(where, "a parameter cannot depend on itself")
                if parent not in specs:
                    raise self.err(
                        where, f"unknown parameter {parent!r}{did_you_mean(parent, specs)}"
                    )
                parent_spec = specs[parent]
                if parent_spec.kind == "float":
                    raise self.err(where, "conditions need a categorical or int parent")
                for v in allowed:
                    if parent_spec.kind == "categorical" and v not in parent_spec.choices:
                        raise self.err(where, f"{v!r} is not one of {list(parent_spec.choices)}")
        return self.ordered(specs)

    def ordered(self, specs: dict[str, ParamSpec]) -> tuple[ParamSpec, ...]:
        """Parents before children (declaration order otherwise); cycles are errors."""
        done: dict[str, ParamSpec] = {}
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                cycle = " -> ".join([*visiting[visiting.index(name) :], name])
                raise self.err(("params", name, "when"), f"conditions form a cycle: {cycle}")
            visiting.append(name)
            for parent in specs[name].when:
                visit(parent)
            visiting.pop()
            done[name] = specs[name]

        for name in specs:
            visit(name)
        return tuple(done.values())

    def param(self, name: str, raw: Any, path: KeyPath) -> ParamSpec:
        if isinstance(raw, list):  # shorthand: a list is the choices of a categorical
            raw = {"type": "categorical", "choices": raw}
        if not isinstance(raw, dict):
            raise self.err(
                path,
                f"expected a mapping with 'type' (float, int, categorical), got {kind_of(raw)};"
                " put constants under 'fixed'",
            )
        spec = self.mapping(raw, path, PARAM_KEYS)
        kind = spec.get("type")
        if kind is None:
            kind = "categorical" if "choices" in spec else None
        if kind not in ("float", "int", "categorical"):
            hint = did_you_mean(str(kind), ("float", "int", "categorical"))
            raise self.err(
                (*path, "type"), f"expected float, int or categorical, got {kind!r}{hint}"
            )
        when = self.when(spec.get("when", {}), (*path, "when"))
        if kind == "categorical":
            for key in ("low", "high", "log", "step"):
                if key in spec:
                    raise self.err((*path, key), "not allowed for a categorical parameter")
            return ParamSpec(name, "categorical", choices=self.choices(spec, path), when=when)
        if "choices" in spec:
            raise self.err((*path, "choices"), f"not allowed for a {kind} parameter")
        for key in ("low", "high"):
            if key not in spec:
                raise self.err(path, f"missing {key!r} for a {kind} parameter")
        low = self.number(spec["low"], (*path, "low"))
        high = self.number(spec["high"], (*path, "high"))
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise self.err((*path, "log"), f"expected true or false, got {kind_of(log)}")
        step = spec.get("step")
        if kind == "int":
            for key, v in (("low", low), ("high", high)):
                if not isinstance(v, int):
                    raise self.err(
                        (*path, key), f"expected an integer for an int parameter, got {v}"
                    )
        if low >= high:
            raise self.err((*path, "low"), f"low ({low}) must be less than high ({high})")
        if log and low <= 0:
            raise self.err((*path, "low"), f"a log-scale parameter needs low > 0, got {low}")
        if step is not None:
            step = self.number(step, (*path, "step"))
            if kind == "int" and not isinstance(step, int):
                raise self.err((*path, "step"), f"expected an integer step, got {step}")
            if step <= 0:
                raise self.err((*path, "step"), f"must be positive, got {step}")
            if log and step != 1:
                raise self.err((*path, "step"), "log scale cannot be combined with a step")
            count = (high - low) / step
            if abs(count - round(count)) > 1e-9 * max(1.0, abs(count)):
                raise self.err(
                    (*path, "step"),
                    f"high - low ({high - low}) is not a multiple of step ({step})",
                )
            if log:
                step = None
        numeric: ParamKind = "int" if kind == "int" else "float"
        return ParamSpec(name, numeric, low=low, high=high, log=log, step=step, when=when)

    def choices(self, spec: dict[str, Any], path: KeyPath) -> tuple[Scalar, ...]:
        choices = spec.get("choices")
        here = (*path, "choices")
        if not isinstance(choices, list) or not choices:
            raise self.err(here, f"expected a non-empty list of values, got {kind_of(choices)}")
        seen: list[Scalar] = []
        for i, c in enumerate(choices):
            if c is not None and not isinstance(c, str | int | float | bool):
                raise self.err((*here, i), f"choices must be scalars, got {kind_of(c)}")
            if isinstance(c, float) and not math.isfinite(c):
                raise self.err((*here, i), f"choices must be finite, got {c}")
            if any(c == s and type(c) is type(s) for s in seen):
                raise self.err((*here, i), f"duplicate choice {c!r}")
            seen.append(c)
        return tuple(seen)

    def when(self, value: Any, path: KeyPath) -> dict[str, tuple[Scalar, ...]]:
        if not isinstance(value, dict):
            raise self.err(
                path, f"expected a mapping of parent parameter -> value(s), got {kind_of(value)}"
            )
        out: dict[str, tuple[Scalar, ...]] = {}
        for parent, allowed in value.items():
            values = allowed if isinstance(allowed, list) else [allowed]
            if not values:
                raise self.err((*path, parent), "expected a value or a non-empty list of values")
            out[parent] = tuple(values)
        return out

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
            if isinstance(v, float) and not math.isfinite(v):
                raise self.err((*path, key), f"expected a finite number, got {v}")
        return dict(value)

    def budget(self, value: Any) -> Budget:
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
        return Budget(
            trials=trials,
            epochs=epochs,
            timeout=seconds,
            trial_timeout=per_trial,
            checkpoint_every=every,
            fail_fast=fail_fast,
        )

    def ranks(self, value: Any, target: str) -> int:
        ranks = self.integer(value, ("ranks",), 1, MAX_RANKS)
        if ranks > 1 and not getattr(registry.load(target), "supports_ranks", True):
            raise self.err(("ranks",), "this benchmark does not support ranks > 1")
        return ranks

    def ensemble(self, value: Any, target: str) -> EnsembleConfig | None:
        path: KeyPath = ("ensemble",)
        if value is None or value is False:
            return None
        if getattr(registry.load(target), "ensemble_kind", None) is None:
            raise self.err(path, "this benchmark does not support ensembles")
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
        return EnsembleConfig(select=select, size=size, pool=pool)

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
