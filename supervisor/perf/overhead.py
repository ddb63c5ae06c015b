"""What the supervisor costs per trial: N no-op trials through the real driver against a
raw Dask ``client.map`` of the same trial function, on the same warm local cluster.

    python -m supervisor.perf.overhead [--trials 2000] [--workers 2] [--slots N]
        [--repeats 1] [--storage journal] [--no-variants]

Variants, each on one ``LocalCluster`` of ``--workers`` processes x 1 thread, made as a
campaign makes it (``supervisor.clusters``), with every worker's trial process started
before timing:

* ``raw map``: ``client.map(direct_trial, params)``: the no-op benchmark's build + fit,
  nothing else. The denominator of every ratio.
* ``raw map of run_trial``: ``client.map(run_trial, specs)``: the supervisor's worker side
  (trial process, result, memory and latency probes) without the driver.
* ``one at a time``: the no-op function submitted one task at a time, each finished
  task replaced by the next, as many in flight as the driver keeps (2 per worker, or
  ``--slots``), results
  through ``as_completed``: what Dask costs any ask/tell loop, before any supervisor code.
* ``supervisor``: the real ``Driver`` with a study opened as ``supervisor search`` opens it
  (``--storage``; default the journal file in the run directory), process isolation as in
  production. The goal: 2,000 no-op trials on 2 workers within 1.5x the raw map.
* ``supervisor, inline``: the same with ``TrialSpec.isolation = "inline"`` (a debugging
  mode, not a user setting): what the trial process costs.
* ``supervisor, in-memory``: the same with Optuna's in-memory storage: what storage costs.
* ``supervisor, prefetch 0`` / ``1/slot``: no trial queued ahead, and one per slot, against
  the default, which sizes prefetch from the trial durations it measures.

Also prints the harness process's CPU seconds per variant: the driver, the Dask client
and the scheduler share that process, so CPU near wall means the driver side is the
bottleneck. Run it on an otherwise idle machine for absolute figures; the ratios are
measured in the same run and are what to compare.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.perf import harness

if TYPE_CHECKING:
    from supervisor.clusters.handle import ClusterHandle
GOAL = 1.5  # supervisor wall / raw map wall, 2,000 no-op trials on 2 workers


@dataclass
class Variant:
    name: str
    run: Callable[[], float]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def one_at_a_time(client: Any, items: list[dict[str, Any]], inflight: int) -> float:
    """Seconds to run ``direct_trial`` over ``items`` keeping ``inflight`` tasks submitted."""
    from distributed import as_completed

    start = time.perf_counter()
    pending = iter(items)
    done = as_completed(with_results=True)
    for params in itertools.islice(pending, inflight):
        done.add(client.submit(harness.direct_trial, params, pure=False))
    for _future, _result in done:
        for params in itertools.islice(pending, 1):
            done.add(client.submit(harness.direct_trial, params, pure=False))
    return time.perf_counter() - start


def variants(args: argparse.Namespace, handle: ClusterHandle) -> list[Variant]:
    from supervisor.execution.worker import run_trial

    params = harness.random_params(args.params, args.trials)
    specs = [harness.noop_spec(p, i) for i, p in enumerate(params)]

    def supervisor(
        storage: str, inline: bool = False, prefetch: int | None = None
    ) -> Callable[[], float]:
        def run() -> float:
            with harness.scratch() as folder:
                exp = harness.experiment(folder, trials=args.trials, n_params=args.params)
                done = harness.run_driver(
                    exp, handle, storage=storage, inline=inline, prefetch=prefetch
                )
            if done.summary.finished != args.trials:
                raise RuntimeError(f"the driver finished {done.summary.finished} trials")
            return done.seconds

        return run

    out = [
        Variant("raw map", lambda: harness.timed_map(handle.client, harness.direct_trial, params)),
        Variant(f"supervisor ({args.storage})", supervisor(args.storage)),
    ]
    if args.variants:
        out += [
            Variant(
                "one at a time",
                lambda: one_at_a_time(handle.client, params, args.slots or 2 * args.workers),
            ),
            Variant(
                "raw map of run_trial", lambda: harness.timed_map(handle.client, run_trial, specs)
            ),
            Variant(f"supervisor ({args.storage}), inline", supervisor(args.storage, True)),
            Variant("supervisor (in-memory)", supervisor("memory")),
            # The default sizes prefetch from trial durations: against none, and one per slot.
            Variant("supervisor, prefetch 0", supervisor(args.storage, prefetch=0)),
            Variant(
                "supervisor, prefetch 1/slot", supervisor(args.storage, prefetch=args.workers)
            ),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--params", type=int, default=2, help="parameters in the space")
    parser.add_argument(
        "--slots",
        type=int,
        default=0,
        help="trials the driver keeps running (and the one-at-a-time loop in flight);"
        " default: one per worker (two in flight)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant (median)")
    parser.add_argument("--storage", default="journal", help="journal | memory | sqlite | URL")
    parser.add_argument(
        "--no-variants",
        dest="variants",
        action="store_false",
        help="only the raw map and the supervisor",
    )
    args = parser.parse_args()

    harness.quiet_logs()
    started = time.perf_counter()
    with harness.local_cluster(args.workers) as handle:
        harness.warm_up(handle.client, args.params)
        if args.slots:  # more trials than workers: queued on them, several free at once
            handle.slots = args.slots
        runs = variants(args, handle)
        for repeat in range(args.repeats):
            for v in runs:  # interleaved: a change in the machine's load hits all alike
                cpu = time.process_time()
                v.walls.append(v.run())
                v.cpus.append(time.process_time() - cpu)
                print(
                    f"  [{repeat + 1}/{args.repeats}] {v.name}: {v.walls[-1]:.2f} s",
                    flush=True,
                )
    raw = statistics.median(runs[0].walls)
    print(
        f"\n{args.trials} no-op trials, {args.workers} workers, {args.params} parameters, "
        f"median of {args.repeats} run(s), {time.perf_counter() - started:.0f} s in all\n"
    )
    rows = []
    for v in runs:
        wall = statistics.median(v.walls)
        rows.append(
            [
                v.name,
                wall,
                args.trials / wall,
                wall / raw,
                1000 * (wall - raw) / args.trials,
                statistics.median(v.cpus),
            ]
        )
    headers = ["variant", "wall s", "trials/s", "x raw map", "+ms/trial", "harness CPU s"]
    print(harness.table(headers, rows))
    ratio = statistics.median(runs[1].walls) / raw
    print(f"\ngoal: supervisor <= {GOAL}x raw map: {ratio:.2f}x {harness.verdict(ratio, GOAL)}")


if __name__ == "__main__":
    main()
