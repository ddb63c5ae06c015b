"""Search quality with many trials in flight: regret against trials and against virtual
wall time, through the real Driver and study on a simulated cluster.

    python -m supervisor.perf.quality [--problems branin,hartmann6,rosenbrock4,ackley5]
        [--inflight 1,8,64,512] [--samplers random,tpe] [--seeds 10] [--trials 150]
        [--mean 60] [--prefetch 0]

Every run is a campaign of the real ``Driver`` on a real (in-memory) Optuna study, as
``perf.scale`` runs it: only Dask is simulated. ``--inflight`` slots take trials FIFO;
a trial lasts a lognormal time of mean ``--mean`` virtual seconds and scores the
problem's simple regret (its value minus the known minimum) at its parameters ``x0 ..
x{d-1}`` in [0, 1]. Virtual time runs at real speed while the driver works, so a
sampler that takes long to propose costs wall time here too.

Printed per problem, sampler and trials in flight: the median and quartiles, over
seeds, of the best regret after every ``--every`` trials and at the end; the trials
needed to reach sequential (1 in flight) TPE's median regret at 100 trials; and the
virtual wall time to reach it, against sequential TPE's.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

from supervisor.benchmarks.functions import FUNCTIONS, evaluate
from supervisor.perf import harness
from supervisor.perf.scale import SimChannel
from supervisor.perf.scale_cluster import Clock, Cluster, SimClient

REFERENCE_TRIALS = 100  # sequential TPE's regret after this many trials is the bar


@dataclass(frozen=True)
class Problem:
    name: str
    function: str
    dims: int

    def regret(self, params: dict[str, Any]) -> float:
        point = [[float(params.get(f"x{i}", 0.5)) for i in range(self.dims)]]
        return float(evaluate(self.function, point)[0]) - FUNCTIONS[self.function].minimum(
            self.dims
        )


PROBLEMS = {
    "branin": Problem("branin", "branin", 2),
    "hartmann6": Problem("hartmann6", "hartmann6", 6),
    "rosenbrock4": Problem("rosenbrock4", "rosenbrock", 4),
    "ackley5": Problem("ackley5", "ackley", 5),
    "styblinski8": Problem("styblinski8", "styblinski_tang", 8),
}


@dataclass
class Curve:
    """One campaign: the regret of each trial in the order trials finished, with the
    virtual time each finished at."""

    regrets: list[float]
    times: list[float]

    def best_after(self, n: int) -> float:
        return min(self.regrets[:n])

    def trials_to(self, target: float) -> int | None:
        best = float("inf")
        for i, value in enumerate(self.regrets):
            best = min(best, value)
            if best <= target:
                return i + 1
        return None

    def time_to(self, target: float) -> float | None:
        n = self.trials_to(target)
        return None if n is None else self.times[n - 1]


def space_text(problem: Problem, trials: int, sampler: str, seed: int) -> str:
    params = "\n".join(
        f"  x{i}: {{type: float, low: 0.0, high: 1.0}}" for i in range(problem.dims)
    )
    return (
        f"study: quality\n"
        f'benchmark: {{name: "{harness.NOOP_TARGET}"}}\n'
        "objectives: [loss]\n"
        f"params:\n{params}\n"
        f"budget: {{trials: {trials}, epochs: 1}}\n"
        f"sampler: {sampler}\n"
        f"seed: {seed}\n"
    )


def campaign(
    problem: Problem,
    sampler: str,
    inflight: int,
    seed: int,
    trials: int,
    mean: float,
    prefetch: int | None,
) -> Curve:
    """One campaign through the real driver on the simulated cluster."""
    from supervisor.config import space
    from supervisor.execution import channel
    from supervisor.perf.scale import Probe
    from supervisor.study.driver import Driver

    args = argparse.Namespace(
        workers=inflight, mean=mean, sigma=0.5, epochs=1, seed=seed, dask_ms=0.0, dispatch_ms=0.0
    )
    clock = Clock()
    cluster = Cluster(args, clock)
    cluster.objective = problem.regret
    with harness.scratch() as folder:
        exp = space.loads(space_text(problem, trials, sampler, seed), "quality.yaml")
        study = harness.open_study(exp, harness.storage_url("memory", folder))
        bound = type("BoundSimChannel", (SimChannel,), {"cluster": cluster, "probe": Probe()})
        driver = Driver(
            exp,
            study,
            SimClient(cluster),  # type: ignore[arg-type]
            slots=inflight,
            prefetch=prefetch,
            run_dir=str(folder),
        )
        clock.set(0.0)
        with mock.patch.object(channel, "DriverChannel", bound):
            driver.run()
        done = [t for t in study.get_trials(deepcopy=False) if t.values]
    done.sort(key=lambda t: float(t.user_attrs.get("finished", 0.0)))
    t0 = cluster.wall0
    return Curve(
        regrets=[float(t.values[0]) for t in done],
        times=[float(t.user_attrs.get("finished", t0)) - t0 for t in done],
    )


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def fmt(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if len(known) < (len(values) + 1) // 2:
        return f"not reached ({len(known)}/{len(values)})"
    padded = sorted(v if v is not None else float("inf") for v in values)
    q1, q2, q3 = quartiles(padded)
    return f"{q2:.4g} [{q1:.4g}, {q3:.4g}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="branin,hartmann6,rosenbrock4,ackley5")
    parser.add_argument("--inflight", default="1,8,64")
    parser.add_argument("--samplers", default="random,tpe")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--mean", type=float, default=60.0, help="mean trial seconds")
    parser.add_argument("--prefetch", type=int, default=None, help="the driver's default")
    parser.add_argument("--every", type=int, default=50, help="print the regret every N")
    args = parser.parse_args(argv)
    harness.quiet_logs()
    unknown = sorted(set(args.problems.split(",")) - set(PROBLEMS))
    if unknown:
        parser.error(f"unknown problems {unknown}; known: {', '.join(PROBLEMS)}")
    inflights = [int(k) for k in args.inflight.split(",")]
    samplers = args.samplers.split(",")
    seeds = range(args.seeds)
    for name in args.problems.split(","):
        problem = PROBLEMS[name]

        def run(
            sampler: str, k: int, trials: int, prefetch: int | None, problem: Problem = problem
        ) -> list[Curve]:
            return [campaign(problem, sampler, k, s, trials, args.mean, prefetch) for s in seeds]

        reference = run("tpe", 1, REFERENCE_TRIALS, 0)  # strictly one trial at a time
        bar = statistics.median(c.best_after(REFERENCE_TRIALS) for c in reference)
        bar_time = statistics.median(c.time_to(bar) or float("inf") for c in reference)
        print(
            f"\n{name} ({problem.dims}-D): sequential TPE's median regret at"
            f" {REFERENCE_TRIALS} trials {bar:.4g}, reached at {bar_time:.0f} s (virtual)"
        )
        marks = list(range(args.every, args.trials + 1, args.every))
        headers = ["sampler", "in flight", *(f"regret@{m}" for m in marks)]
        headers += ["trials to bar", "time to bar (s)", "speed-up"]
        rows = []
        for sampler in samplers:
            for k in inflights:
                curves = run(sampler, k, args.trials, args.prefetch)
                times = [c.time_to(bar) for c in curves]
                known = sorted(t for t in times if t is not None)
                speed = f"{bar_time / statistics.median(known):.1f}x" if known else "-"
                rows.append(
                    [
                        sampler,
                        k,
                        *(fmt([c.best_after(m) for c in curves]) for m in marks),
                        fmt([c.trials_to(bar) for c in curves]),
                        fmt(times),
                        speed,
                    ]
                )
        print(harness.table(headers, rows))


if __name__ == "__main__":
    main()
