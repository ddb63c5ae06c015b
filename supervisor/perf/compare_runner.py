"""One workload under Ray Tune or DeepHyper; prints its timing as one JSON line.

    <compare venv>/bin/python supervisor/perf/compare_runner.py ray noop --trials 300 --workers 2

Run by ``supervisor.perf.compare`` with the interpreter of its own virtual environment,
where the framework is installed and the supervisor is not: this file imports neither
the supervisor nor anything outside the standard library at the top.

The trial is the supervisor's no-op benchmark in miniature: a loss from one float
parameter, after sleeping ``--seconds`` (0 for ``noop``). The wall time counts from the
framework's search call to its return, after its runtime started (``ray.init``, the
process pool), so start-up is not counted, as for the supervisor's warm cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

SECONDS = float(os.environ.get("COMPARE_SECONDS", "0"))  # read again in forked workers


def loss(x: float) -> float:
    if SECONDS:
        time.sleep(SECONDS)
    return (x - 2.0) ** 2


def ray_trainable(config: dict[str, Any]) -> dict[str, float]:
    return {"loss": loss(config["x"])}


def run_ray(args: argparse.Namespace, folder: str) -> tuple[float, int]:
    import ray  # type: ignore[import-not-found, unused-ignore]
    from ray import tune

    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        tune_config: dict[str, Any] = {"num_samples": args.trials, "metric": "loss", "mode": "min"}
        if not args.ray_defaults:  # Ray's advice for many short trials
            tune_config["reuse_actors"] = True
        tuner = tune.Tuner(
            ray_trainable,
            param_space={"x": tune.uniform(-4.0, 4.0)},
            tune_config=tune.TuneConfig(**tune_config),
            run_config=tune.RunConfig(storage_path=folder, name="compare", verbose=0),
        )
        start = time.perf_counter()
        results = tuner.fit()
        seconds = time.perf_counter() - start
        done = sum(1 for r in results if r.error is None and r.metrics.get("loss") is not None)
    finally:
        ray.shutdown()
    return seconds, done


def deephyper_run(job: Any) -> float:
    return -loss(job.parameters["x"])  # DeepHyper maximises


def run_deephyper(args: argparse.Namespace, folder: str) -> tuple[float, int]:
    from deephyper.evaluator import Evaluator  # type: ignore[import-not-found, unused-ignore]
    from deephyper.hpo import HpProblem, RandomSearch  # type: ignore[import-not-found, unused-ignore]

    problem = HpProblem()
    problem.add_hyperparameter((-4.0, 4.0), "x")
    evaluator = Evaluator.create(
        deephyper_run, method="process", method_kwargs={"num_workers": args.workers}
    )
    search = RandomSearch(problem, random_state=0, log_dir=folder)
    start = time.perf_counter()
    results = search.search(evaluator, max_evals=args.trials, max_evals_strict=True)
    seconds = time.perf_counter() - start
    evaluator.close()
    return seconds, 0 if results is None else len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=("ray", "deephyper"))
    parser.add_argument("workload", choices=("noop", "sleep"))
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5, help="sleep workload only")
    parser.add_argument("--ray-defaults", action="store_true", help="no tuning of Ray Tune")
    args = parser.parse_args()
    global SECONDS
    SECONDS = args.seconds if args.workload == "sleep" else 0.0
    os.environ["COMPARE_SECONDS"] = str(SECONDS)  # for workers that do not fork
    if args.framework == "ray" and not args.ray_defaults:
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with tempfile.TemporaryDirectory(prefix="compare-") as folder:
        run = run_ray if args.framework == "ray" else run_deephyper
        seconds, done = run(args, folder)
    print(json.dumps({"seconds": seconds, "trials": done}), flush=True)


if __name__ == "__main__":
    main()
