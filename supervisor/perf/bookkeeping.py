"""Bookkeeping overhead: N trials that sleep t seconds on W slots, wall time against the
ideal N x t / W (Ray Tune's bookkeeping test: 10,000 one-second trials on 16 CPUs took
715 s against 625 s ideal, 1.144x).

    python -m supervisor.perf.bookkeeping [--trials 200] [--seconds 0.5] [--workers 4]
        [--epochs 1] [--storage journal] [--prefetch N]

The supervisor runs as a campaign runs: the real driver, a study on the journal file of
a run directory (``--storage``), the local Dask cluster of ``supervisor.clusters`` (its
trial processes started before timing), the no-op benchmark sleeping ``--seconds`` per
trial (spread over ``--epochs``, each streamed to the driver). A raw Dask ``client.map``
of the same sleeps on the same cluster is the floor Dask itself sets. Sleeping trials
need no core, so W may exceed the cores (each worker is a process plus its trial process).
Goal: supervisor wall <= 1.05x ideal.
"""

from __future__ import annotations

import argparse
import time

from supervisor.perf import harness

GOAL = 1.05


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.5, help="sleep per trial")
    parser.add_argument("--workers", type=int, default=4, help="trial slots")
    parser.add_argument("--epochs", type=int, default=1, help="the sleep is split over them")
    parser.add_argument("--params", type=int, default=2)
    parser.add_argument("--storage", default="journal", help="journal | memory | sqlite | URL")
    parser.add_argument("--prefetch", type=int, default=None, help="default: the driver's")
    args = parser.parse_args()

    harness.quiet_logs()
    ideal = args.trials * args.seconds / args.workers
    params = harness.random_params(args.params, args.trials)
    with harness.local_cluster(args.workers) as handle, harness.scratch() as folder:
        harness.warm_up(handle.client, args.params)
        raw = harness.timed_map(
            handle.client,
            harness.direct_trial,
            params,
            [args.seconds] * args.trials,
            [args.epochs] * args.trials,
        )
        print(f"  raw map: {raw:.2f} s", flush=True)
        exp = harness.experiment(
            folder,
            trials=args.trials,
            seconds=args.seconds,
            epochs=args.epochs,
            n_params=args.params,
        )
        cpu = time.process_time()
        done = harness.run_driver(exp, handle, storage=args.storage, prefetch=args.prefetch)
        cpu = time.process_time() - cpu
        print(f"  supervisor: {done.seconds:.2f} s", flush=True)
    if done.summary.finished != args.trials:
        raise SystemExit(f"the driver finished {done.summary.finished} of {args.trials} trials")
    print(
        f"\n{args.trials} trials x {args.seconds:g} s on {args.workers} slots "
        f"({args.epochs} epoch(s) each, {args.storage} storage); ideal {ideal:.1f} s\n"
    )
    rows = [
        ["raw Dask map", raw, raw / ideal, 1000 * (raw - ideal) * args.workers / args.trials],
        [
            "supervisor",
            done.seconds,
            done.seconds / ideal,
            1000 * (done.seconds - ideal) * args.workers / args.trials,
        ],
    ]
    headers = ["run", "wall s", "x ideal", "+ms per trial per slot"]
    print(harness.table(headers, rows))
    ratio = done.seconds / ideal
    print(
        f"\nsupervisor vs raw map: {done.seconds / raw:.3f}x; driver process CPU "
        f"{cpu:.1f} s ({100 * cpu / done.seconds:.0f} % of its wall)"
    )
    print(f"goal: supervisor <= {GOAL}x ideal: {ratio:.3f}x {harness.verdict(ratio, GOAL)}")


if __name__ == "__main__":
    main()
