"""Shared pieces of the overhead scripts (``overhead``, ``bookkeeping``, ``scale``,
``sampler_cost``, ``compare``): a no-op benchmark, experiments and studies built the way a
campaign builds them, the production cluster, the driver run, and figures.

Not a script itself. The no-op benchmark lives here, not in ``benchmarks_sci``, so that it
is never registered (the conformance suite runs every registered benchmark).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option

if TYPE_CHECKING:
    import optuna
    from distributed import Client

    from supervisor.clusters.handle import ClusterHandle
    from supervisor.config.experiment import Experiment
    from supervisor.execution.trial import TrialSpec
    from supervisor.study.driver import Summary

ROOT = Path(__file__).resolve().parents[2]
NOOP_TARGET = "supervisor.perf.harness:NoopBenchmark"


# -- the workload -----------------------------------------------------------------------


class _NoopData:
    """What ``load_data`` returns: just the validation inputs the latency probe reads."""

    def __init__(self) -> None:
        self.x_val = [0.0] * 32


class NoopBenchmark(Benchmark):
    """A trial that does nothing but sleep ``seconds`` (spread over its epochs): what is
    left of its wall time is the supervisor's and Dask's."""

    name = "perf-noop"
    metrics: ClassVar[dict[str, Direction]] = {"loss": "minimize"}
    options: ClassVar[dict[str, Option]] = {
        "seconds": Option(0.0, "seconds one trial sleeps, spread over its epochs", low=0.0),
    }
    supports_ranks = False
    checkpoints = False

    def load_data(self, seed: int) -> _NoopData:
        return _NoopData()

    def build_model(self, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        return dict(params)

    def fit(
        self,
        model: Any,
        data: Any,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        loss = loss_of(params)
        for epoch in range(epochs):
            if self.config["seconds"]:
                time.sleep(self.config["seconds"] / epochs)
            if report(epoch, {"loss": loss}):
                break
        return {"loss": loss}

    def predict(self, model: Any, x: Any) -> Any:
        return x

    def save_data(self, data: Any, path: Path) -> None:
        path.write_text("{}")

    def count_params(self, model: Any) -> int:
        return len(model)


def loss_of(params: Mapping[str, Any]) -> float:
    return float((float(params.get("x0", 0.0)) - 2.0) ** 2)


def direct_trial(params: dict[str, Any], seconds: float = 0.0, epochs: int = 1) -> float:
    """The trial's own work without the supervisor: what a raw ``client.map`` runs."""
    bench = NoopBenchmark({"seconds": seconds})
    model = bench.build_model(params, 0)
    return bench.fit(model, bench.load_data(0), params, epochs, lambda _e, _m: False)["loss"]


def random_params(n: int, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` parameter sets ``x0``..``x{n-1}`` for raw Dask maps (the no-op trial
    reads only ``x0``; the rest give the task its usual size)."""
    import random

    rng = random.Random(seed)
    return [{f"x{i}": rng.uniform(-4.0, 4.0) for i in range(n)} for _ in range(count)]


# -- experiments and studies -------------------------------------------------------------


def space_yaml(n_params: int) -> str:
    """``n_params`` parameters shaped like ``search_spaces/weather.yaml`` (floats, a
    log-scale float, a stepped int, a categorical). ``x0`` is a continuous float, so a
    random sampler never proposes a duplicate (which would be told without running and
    flatter the driver). Wide integer ranges are avoided: Optuna's TPE costs grow with
    them (an int in 1..10^6 costs it about 15x a float at 1,000 trials)."""
    kinds = (
        "{type: float, low: -4.0, high: 4.0}",
        "{type: float, low: 1.0e-5, high: 1.0, log: true}",
        "{type: int, low: 4, high: 64, step: 4}",
        "{type: categorical, choices: [adam, sgd, rmsprop]}",
    )
    return "\n".join(f"  x{i}: {kinds[i % len(kinds)]}" for i in range(n_params))


def experiment(
    folder: Path,
    *,
    trials: int,
    seconds: float = 0.0,
    epochs: int = 1,
    n_params: int = 1,
    sampler: str = "random",
    study: str = "perf",
) -> Experiment:
    """A validated experiment, read from a space file as ``supervisor search`` reads it."""
    from supervisor.config import space

    path = folder / f"{study}.yaml"
    path.write_text(
        f"study: {study}\n"
        f'benchmark: {{name: "{NOOP_TARGET}", options: {{seconds: {float(seconds)}}}}}\n'
        "objectives: [loss]\n"
        f"params:\n{space_yaml(n_params)}\n"
        f"budget: {{trials: {trials}, epochs: {epochs}}}\n"
        f"sampler: {sampler}\n"
        "seed: 0\n"
    )
    return space.load(path)


def storage_url(kind: str, folder: Path) -> str:
    """``journal`` (the campaign default: a journal file in the run directory), ``memory``,
    ``sqlite`` or any storage URL."""
    import supervisor.rundir as rundir

    if kind == "journal":
        return rundir.journal_url(folder)
    if kind == "sqlite":
        return f"sqlite:///{folder / 'study.db'}"
    return kind


def open_study(exp: Experiment, url: str) -> optuna.Study:
    """The study as a campaign opens it (sampler, metric names, study attributes); the
    in-memory storage is opened alike, for comparison."""
    import optuna

    from supervisor.config.samplers import make_sampler
    from supervisor.study.open_study import open_campaign_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url != "memory":
        return open_campaign_study(exp, url)
    sampler = make_sampler(exp.sampler, exp.sampler_options, exp.seed, grid=exp.grid())
    study = optuna.create_study(
        study_name=exp.study_name, sampler=sampler, directions=exp.directions
    )
    study.set_user_attr("supervisor:config", exp.to_dict())
    return study


# -- clusters and runs ------------------------------------------------------------------


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="supervisor-perf-") as tmp:
        yield Path(tmp)


def quiet_logs() -> None:
    """Optuna's per-trial info lines would cost more than some of what is measured."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[ClusterHandle]:
    """The campaign's default cluster (``supervisor.clusters.local``), warmed up: worker
    start-up is not what is measured."""
    from supervisor.clusters.launch import open_cluster

    with open_cluster(
        workers=workers, threads=1, scheduler=None, dashboard="127.0.0.1:0"
    ) as handle:
        handle.client.wait_for_workers(workers)
        yield handle


@contextlib.contextmanager
def inline_trials(enabled: bool) -> Iterator[None]:
    """Trials run in the Dask worker itself (``TrialSpec.isolation = "inline"``) rather
    than in its trial process. Not a user setting: the driver never sets it, so it is
    swapped in here to measure what process isolation costs."""
    if not enabled:
        yield
        return
    from supervisor.execution.trial import TrialSpec
    from supervisor.study import launches

    original = launches.TrialSpec
    launches.TrialSpec = functools.partial(TrialSpec, isolation="inline")  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        launches.TrialSpec = original  # type: ignore[misc]


@dataclass
class DriverRun:
    seconds: float
    summary: Summary
    study: optuna.Study


def run_driver(
    exp: Experiment,
    handle: ClusterHandle,
    *,
    storage: str = "journal",
    inline: bool = False,
    prefetch: int | None = None,
) -> DriverRun:
    """One campaign through the real driver on ``handle``'s cluster, in a fresh run
    directory and study; ``seconds`` is the driver's own wall time (``Summary.elapsed``)."""
    from supervisor.study.driver import Driver

    with scratch() as tmp:
        study = open_study(exp, storage_url(storage, tmp))
        driver = Driver(
            exp,
            study,
            handle.client,
            slots=handle.slots,
            threads=handle.threads,
            prefetch=prefetch,
            run_dir=str(tmp),
        )
        with inline_trials(inline):
            summary = driver.run()
    return DriverRun(summary.elapsed, summary, study)


def warm_up(client: Client, n_params: int) -> None:
    """Import the benchmark and start every worker's trial process before timing."""
    from supervisor.execution.worker import run_trial

    params = random_params(n_params, 1)[0]
    specs = [noop_spec(params, -1 - i) for i in range(4 * len(client.scheduler_info()["workers"]))]
    client.gather(client.map(run_trial, specs, pure=False))
    client.gather(client.map(direct_trial, [params] * len(specs), pure=False))


def noop_spec(params: dict[str, Any], number: int) -> TrialSpec:
    """A no-op trial's spec, as the driver would make it (without its event stream)."""
    from supervisor.execution.trial import TrialSpec

    return TrialSpec(
        study_name="warm-up",
        trial_number=number,
        params=params,
        benchmark=NoopBenchmark.name,
        benchmark_target=NOOP_TARGET,
        options={"seconds": 0.0},
        epochs=1,
        seed=0,
        data_seed=0,
        objectives=("loss",),
    )


def timed_map(client: Client, fn: Callable[..., Any], *iterables: Sequence[Any]) -> float:
    """Seconds for a raw ``client.map`` of ``fn`` over ``iterables`` and its gather."""
    start = time.perf_counter()
    client.gather(client.map(fn, *iterables, pure=False))
    return time.perf_counter() - start


# -- figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of ``pid`` (this process by default) in MiB."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def verdict(value: float, goal: float, higher_is_better: bool = False) -> str:
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "MISSED"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, numbers right-aligned (also valid Markdown)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        padded = [
            c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
        ]
        lines.append("| " + " | ".join(padded) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).isdigit()
