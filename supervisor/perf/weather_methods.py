"""The seed's accuracy table on the synthetic weather tasks: every method (the ConvNet
and the classical baselines) with its defaults, then tuned by a small TPE search of its
own hyper-parameters from ``search_spaces/weather-methods.yaml``, as the seed tuned
every method. Prints validation and test accuracy next to the seed's test accuracy.

    python -m supervisor.perf.weather_methods [--tasks tc,wf,ar] [--n-train 4000]
        [--trials 4] [--epochs 5] [--methods cnn,logreg,knn,svm,random_forest]

Runs in this process, one trial at a time, on tiny-to-moderate data: a figure, not a
campaign (``supervisor search search_spaces/weather-methods.yaml`` is the campaign).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import optuna

from supervisor.config import params, space

SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "weather-methods.yaml"
# Test accuracy (%) of the seed's table (Liu et al. 2016), every method tuned.
SEED_TABLE: dict[str, dict[str, float]] = {
    "tc": {"logreg": 95.85, "knn": 97.85, "svm": 95.85, "random_forest": 99.4, "cnn": 99.1},
    "ar": {"logreg": 82.65, "knn": 81.7, "svm": 83.0, "random_forest": 88.4, "cnn": 90.0},
    "wf": {"logreg": 89.8, "knn": 76.45, "svm": 90.2, "random_forest": 87.5, "cnn": 89.4},
}
METHODS = ("logreg", "knn", "svm", "random_forest", "cnn")


def evaluate(
    bench: Any, data: Any, hp: dict[str, Any], epochs: int, seed: int
) -> dict[str, float]:
    """Train one configuration; its final metrics (validation and test)."""
    model = bench.build_model(hp, seed=seed)
    return dict(bench.fit(model, data, hp, epochs, lambda _epoch, _metrics: False))


def tune(
    bench: Any, data: Any, method: str, exp: space.Experiment, trials: int, epochs: int
) -> tuple[dict[str, float], dict[str, float], float]:
    """(defaults' metrics, best-by-validation metrics, seconds) of ``method``."""
    start = time.perf_counter()
    default = evaluate(bench, data, {"method": method}, epochs, exp.seed)
    best = default
    sampler = optuna.samplers.TPESampler(seed=exp.seed, n_startup_trials=max(1, trials // 2))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(trials):
        study.enqueue_trial({"method": method})  # this method's parameters only
        trial = study.ask()
        hp = {**exp.fixed, **params.suggest(trial, exp.params)}
        metrics = evaluate(bench, data, hp, epochs, exp.seed)
        study.tell(trial, metrics["val_accuracy"])
        if metrics["val_accuracy"] > best["val_accuracy"]:
            best = metrics
    return default, best, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="tc,wf,ar")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-eval", type=int, default=1000, help="validation and test patches")
    parser.add_argument("--trials", type=int, default=4, help="tuning trials per method")
    parser.add_argument("--epochs", type=int, default=5, help="ConvNet epochs")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from benchmarks_sci.weather import WeatherBenchmark

    exp = space.load(SPACE)
    print(f"{args.n_train} training, {args.n_eval} validation and test patches per task; ")
    print(f"defaults, then {args.trials} TPE trials per method; ConvNet {args.epochs} epochs")
    header = f"{'task':<5}{'method':<14}{'default val':>12}{'tuned val':>10}{'tuned test':>11}"
    print(f"{header}{'seed test':>10}{'seconds':>9}")
    for task in args.tasks.split(","):
        n = {"n_train": args.n_train, "n_val": args.n_eval, "n_test": args.n_eval}
        bench = WeatherBenchmark({"task": task, **n})
        data = bench.load_data(seed=exp.seed)
        for method in args.methods.split(","):
            default, best, seconds = tune(bench, data, method, exp, args.trials, args.epochs)
            print(
                f"{task:<5}{method:<14}{100 * default['val_accuracy']:>12.1f}"
                f"{100 * best['val_accuracy']:>10.1f}{100 * best['test_accuracy']:>11.1f}"
                f"{SEED_TABLE[task][method]:>10.2f}{seconds:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
