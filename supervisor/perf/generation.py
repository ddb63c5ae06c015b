"""Synthetic data generation against training time, per example search space: the data
of a worker are generated once and reused by all its trials, and even one trial's
training should dwarf their generation (the target: generation < 10 % of a trial).

    python -m supervisor.perf.generation [search_spaces/weather.yaml ...]

Times ``load_data`` with the file's options, then one epoch of the benchmark's default
model on them; a trial is taken as the file's ``budget.epochs`` such epochs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from supervisor.benchmarks import registry
from supervisor.config import space

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
DEFAULT_FILES = ("weather", "weather-wf", "weather-ar", "cosmogan", "speech", "nanopore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="space files (default: one per task)")
    args = parser.parse_args()
    files = args.files or [str(SPACES / f"{name}.yaml") for name in DEFAULT_FILES]
    print(f"{'space file':<22}{'generate s':>11}{'epoch s':>9}{'epochs':>7}{'share':>8}")
    for file in files:
        exp = space.load(file)
        bench = registry.load(exp.benchmark)(exp.options)
        start = time.perf_counter()
        data = bench.load_data(seed=exp.seed)
        generate = time.perf_counter() - start
        model = bench.build_model(exp.fixed, seed=exp.seed)
        start = time.perf_counter()
        bench.fit(model, data, exp.fixed, 1, lambda _epoch, _metrics: False)
        epoch = time.perf_counter() - start
        share = generate / (generate + exp.budget.epochs * epoch)
        print(
            f"{Path(file).name:<22}{generate:>11.2f}{epoch:>9.1f}"
            f"{exp.budget.epochs:>7}{100 * share:>7.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
