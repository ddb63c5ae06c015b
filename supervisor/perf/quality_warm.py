"""What warm start buys: campaigns told an earlier campaign's trials, as ``warm_start:``
tells them, through the real driver on the simulated cluster of ``perf.quality``.

For each problem and seed, an earlier campaign of ``--first`` trials (seed + 1000, the
same sampler and trials in flight) is fitted to the space by ``study.warm_start.fit``, and
a new campaign of ``--trials`` trials starts three ways: ``cold`` (told nothing),
``complete`` (told the complete trials only, as warm start did before it carried
failures) and ``warm`` (told the complete and the failed ones: warm start now). Printed
per problem: the median [quartiles] over seeds of the regret of the answer (the best of
the trials told and the campaign's own) after half the trials and after all, and, on a
problem where part of the space fails (``fail-<problem>``), the campaign's own trials
that failed.

    python -m supervisor.perf.quality_warm --problems fail-branin,fail-hartmann6
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.perf import harness
from supervisor.perf.problems import Problem, problem
from supervisor.perf.quality import campaign_study, curve_of, fmt, space_text

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

VARIANTS = ("cold", "complete", "warm")
EARLIER_SEED = 1000  # the earlier campaign's seed: this seed + it


def told(trials: list[FrozenTrial], variant: str) -> list[FrozenTrial]:
    from optuna.trial import TrialState

    if variant == "cold":
        return []
    return [t for t in trials if variant == "warm" or t.state == TrialState.COMPLETE]


def seed_row(prob: Problem, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One seed: the earlier campaign, then the new one told it each way."""
    from supervisor.config import space
    from supervisor.config.warm_start import WarmSource
    from supervisor.study import warm_start

    run = (args.sampler, args.inflight)
    earlier, _ = campaign_study(prob, *run, seed + EARLIER_SEED, args.first, args.mean, None)
    exp = space.loads(space_text(prob, args.trials, args.sampler, seed), "quality.yaml")
    fitted = warm_start.fit(exp, WarmSource("earlier"), earlier, "warm_start: earlier")
    known = min((prob.regret(t.params) for t in fitted.trials if t.values), default=math.inf)
    row: dict[str, Any] = {
        "problem": prob.name,
        "seed": seed,
        "told_failed": fitted.failed,
        "told_best": known,
    }
    for variant in VARIANTS:
        trials = told(fitted.trials, variant)
        known = row["told_best"] if trials else math.inf
        study, t0 = campaign_study(prob, *run, seed, args.trials, args.mean, None, trials)
        curve = curve_of(study.get_trials(deepcopy=False), t0, prob)
        row[variant] = {
            "half": min(known, curve.best_after(args.trials // 2)),
            "end": min(known, curve.best_after(args.trials)),
            "failed": curve.failed_within(args.trials),
        }
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="fail-branin,fail-hartmann6,fail-rosenbrock4")
    parser.add_argument("--sampler", default="turbo")
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=50, help="the earlier campaign's trials")
    parser.add_argument("--trials", type=int, default=100, help="the new campaign's trials")
    parser.add_argument("--mean", type=float, default=60.0, help="mean trial seconds")
    parser.add_argument("--json", help="also write every seed's figures here")
    args = parser.parse_args(argv)
    harness.quiet_logs()
    try:
        problems = [problem(name) for name in args.problems.split(",")]
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    raw: list[dict[str, Any]] = []
    half = args.trials // 2
    headers = ["problem", "told (failed)"]
    for variant in VARIANTS:
        headers += [f"{variant} @{half}", f"{variant} @{args.trials}", f"{variant} failed"]
    rows = []
    for prob in problems:
        seeds = [seed_row(prob, args, s) for s in range(args.seeds)]
        raw += seeds
        cells: list[object] = [prob.name, fmt([r["told_failed"] for r in seeds])]
        for variant in VARIANTS:
            cells += [fmt([r[variant][k] for r in seeds]) for k in ("half", "end", "failed")]
        rows.append(cells)
        print(harness.table(headers, rows[-1:]), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=1))
    print(f"\nOver {len(problems)} problem(s), {args.inflight} in flight, {args.sampler}:")
    print(harness.table(headers, rows))
    for variant, against in (("complete", "cold"), ("warm", "cold"), ("warm", "complete")):
        ratios = [_median(raw, p.name, variant) / _median(raw, p.name, against) for p in problems]
        failed = sum(r[variant]["failed"] for r in raw)
        print(
            f"{variant} against {against}: median regret {_geomean(ratios):.3g}x (geometric"
            f" mean), lower on {sum(r < 0.99 for r in ratios)}, higher on"
            f" {sum(r > 1.01 for r in ratios)} of {len(ratios)}; own trials failed {failed}"
            f" against {sum(r[against]['failed'] for r in raw)}"
        )


def _median(raw: list[dict[str, Any]], name: str, variant: str) -> float:
    """The median seed's regret at the end, kept above 0 for the ratios."""
    return max(statistics.median(r[variant]["end"] for r in raw if r["problem"] == name), 1e-12)


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


if __name__ == "__main__":
    main()
