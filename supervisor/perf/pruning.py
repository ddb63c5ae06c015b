"""Pruning and sampler figures on the weather benchmark (a script, not a timed test).

    python -m supervisor.perf.pruning [--seeds 3] [--trials 12] [--epochs 9] [--n-train 1000]
    python -m supervisor.perf.pruning --only samplers --seeds 5 --trials 24 --epochs 3

Runs the TC search of search_spaces/weather.yaml through the real driver on a local Dask
cluster, for each seed: TPE without pruning, TPE with ASHA (Optuna's
SuccessiveHalvingPruner), and random search without pruning; same seeds, same trial
budget. Prints the best validation accuracy and the epochs trained for ASHA against no
pruning, and the median best-so-far accuracy over the seeds of TPE against random search.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "weather.yaml"
RUNS = (("tpe", "none"), ("tpe", "asha"), ("random", "none"))
ONLY = {"all": RUNS, "pruning": RUNS[:2], "samplers": (RUNS[0], RUNS[2])}


@dataclass
class Run:
    sampler: str
    pruner: str
    seed: int
    best: float  # best val_accuracy of a complete trial
    epochs: int  # epochs trained over all trials
    pruned: int
    best_so_far: list[float]  # after each trial, in trial order
    seconds: float


def experiment(args: argparse.Namespace, sampler: str, pruner: str, seed: int, tmp: Path) -> Any:
    import yaml

    from supervisor.config import space

    config = yaml.safe_load(SPACE.read_text())
    config["study"] = f"perf-{sampler}-{pruner}-{seed}"
    config["benchmark"]["options"].update(n_train=args.n_train, n_val=args.n_val, n_test=64)
    config["budget"] = {"trials": args.trials, "epochs": args.epochs}
    config["seed"] = seed
    config["sampler"] = {"name": sampler, "options": {}}
    if sampler == "tpe":
        config["sampler"]["options"] = {"n_startup_trials": args.startup}
    config["pruner"] = {"name": pruner, "options": {}}
    if pruner == "asha":
        config["pruner"]["options"] = {"min_resource": 1, "reduction_factor": 3}
    path = tmp / f"{config['study']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return space.load(path)


def run_once(client: Any, exp: Any, workers: int) -> Run:
    import optuna
    from optuna.trial import TrialState

    from supervisor.config.samplers import make_sampler
    from supervisor.study.driver import Driver

    study = optuna.create_study(
        study_name=exp.study_name,
        directions=exp.directions,
        sampler=make_sampler(exp.sampler, exp.sampler_options, exp.seed),
    )
    t0 = time.perf_counter()
    Driver(exp, study, client, slots=workers, prefetch=0).run()
    seconds = time.perf_counter() - t0
    best, curve = float("nan"), []
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state == TrialState.COMPLETE and t.value is not None:
            best = t.value if best != best else max(best, t.value)
        curve.append(best)
    return Run(
        sampler=exp.sampler,
        pruner=exp.pruner,
        seed=exp.seed,
        best=best,
        epochs=sum(len(t.user_attrs.get("history", [])) for t in study.trials),
        pruned=sum(1 for t in study.trials if t.state == TrialState.PRUNED),
        best_so_far=curve,
        seconds=seconds,
    )


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} [{min(values):.4f}-{max(values):.4f}]"


def report(runs: list[Run], args: argparse.Namespace) -> None:
    def of(sampler: str, pruner: str) -> list[Run]:
        return sorted(
            (r for r in runs if (r.sampler, r.pruner) == (sampler, pruner)), key=lambda r: r.seed
        )

    seeds = ", ".join(map(str, args.seed_list))
    print(
        f"\nweather TC, n_train={args.n_train}, n_val={args.n_val}, {args.trials} trials x "
        f"{args.epochs} epochs, seeds {seeds}, {args.workers} workers"
    )
    head = f"{'best val_accuracy: median [min-max]':>36} {'epochs (median)':>16}"
    print(f"{'':<20} {head} {'pruned':>7} {'wall s':>7}")
    for sampler, pruner in ONLY[args.only]:
        rs = of(sampler, pruner)
        epochs = statistics.median(r.epochs for r in rs)
        label = f"{sampler}, {pruner if pruner != 'none' else 'no pruning'}"
        print(
            f"{label:<20} {_spread([r.best for r in rs]):>36} {epochs:>16.0f} "
            f"{statistics.median(r.pruned for r in rs):>7.0f} "
            f"{statistics.median(r.seconds for r in rs):>7.0f}"
        )
    plain, asha = of("tpe", "none"), of("tpe", "asha")
    if asha:
        print("\nASHA against no pruning, per seed (TPE both):")
        for p, a in zip(plain, asha, strict=True):
            print(
                f"  seed {p.seed}: best {a.best:.4f} vs {p.best:.4f} ({a.best - p.best:+.4f}); "
                f"epochs {a.epochs} vs {p.epochs} ({a.epochs / p.epochs:.0%})"
            )
        ratio = sum(a.epochs for a in asha) / sum(p.epochs for p in plain)
        print(f"  all seeds: ASHA trained {ratio:.0%} of the epochs of no pruning")
    if not of("random", "none"):
        return
    print("\nmedian best-so-far val_accuracy over seeds, after trial:")
    marks = sorted({max(1, args.trials * k // 4) for k in range(1, 5)})
    print(f"  {'':<8}" + "".join(f"{m:>9}" for m in marks))
    for sampler in ("tpe", "random"):
        rs = of(sampler, "none")
        row = [statistics.median(r.best_so_far[m - 1] for r in rs) for m in marks]
        print(f"  {sampler:<8}" + "".join(f"{v:>9.4f}" for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-val", type=int, default=300)
    parser.add_argument("--startup", type=int, default=4, help="TPE's random start-up trials")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=sorted(ONLY), default="all")
    args = parser.parse_args()
    args.seed_list = list(range(args.seeds))

    import optuna
    from distributed import Client, LocalCluster

    from supervisor.clusters.handle import configure_dask

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configure_dask()
    runs = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for seed in args.seed_list:
            for sampler, pruner in ONLY[args.only]:
                run = run_once(
                    client, experiment(args, sampler, pruner, seed, Path(tmp)), args.workers
                )
                print(
                    f"seed {seed} {sampler:<6} {pruner:<5} best {run.best:.4f} "
                    f"epochs {run.epochs:>4} pruned {run.pruned:>2} in {run.seconds:.0f} s",
                    flush=True,
                )
                runs.append(run)
    report(runs, args)


if __name__ == "__main__":
    main()
