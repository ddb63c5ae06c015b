"""Samples/s of every benchmark with the frameworks' defaults against the node-level
settings (``supervisor.execution.node``), with XLA off and on, and the calibrate table.

    python -m supervisor.perf.kernels [--tiny] [--benchmarks weather,speech] [--epochs 1]

"defaults": each trial process left to size its own thread pools for the whole node
(what a plain ``model.fit`` does). "node": each trial's TF/oneDNN/OpenMP pools sized to
its share of the cores (not pinned to them, as a search's trials are not). Both are
measured for one trial on the whole node and for trials packed one per core, where
oversubscription shows.
"""

from __future__ import annotations

import argparse

from supervisor.benchmarks import registry
from supervisor.execution import calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default=",".join(sorted(registry.BUILTIN)))
    parser.add_argument("--tiny", action="store_true", help="tiny data (a quick check)")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    cores = calibrate.usable_cores()
    n = len(cores)
    print(f"node: {calibrate.cpu_model()}, {n} cores")
    print(f"{'benchmark':<10} {'packing':<16} {'xla':<4} {'defaults':>9} {'node':>9} {'ratio':>6}")
    for name in args.benchmarks.split(","):
        cls = registry.load(name)
        options = cls.validate_options(cls.tiny_options if args.tiny else {})
        for packing in (calibrate.Packing(n, 1), calibrate.Packing(1, n)):
            for xla in ("off", "on"):
                rates = {}
                for tuned in (False, True):
                    m = calibrate.measure(
                        registry.target(name),
                        options,
                        packing,
                        args.epochs,
                        tuned=tuned,
                        xla=xla,
                    )
                    rates[tuned] = m.aggregate
                label = f"{packing.trials} x {packing.threads} thr"
                ratio = rates[True] / rates[False] if rates[False] else float("nan")
                print(
                    f"{name:<10} {label:<16} {xla:<4} {rates[False]:>9.0f} {rates[True]:>9.0f}"
                    f" {ratio:>6.2f}",
                    flush=True,
                )
        cal = calibrate.calibrate(name, registry.target(name), options, epochs=args.epochs)
        best = f"{cal.trials_per_node} trial(s) x {cal.threads_per_trial} thread(s)"
        print(f"{name:<10} calibrate: {cal.table}; recommended {best}", flush=True)


if __name__ == "__main__":
    main()
