"""Busy fraction across walltime changeovers, before and after jobs are renewed ahead.

    python -m supervisor.perf.changeover [--jobs 8] [--walltime 120] [--mean 5]
        [--queue-wait 1,5] [--startup 3] [--trials 3000] [--processes 1]

The real ``Driver`` (with its lifetime-aware placement) runs on a simulated batch cluster
(``supervisor.perf.changeover_cluster``): ``--jobs`` jobs of ``--processes`` workers, each
job waits ``--queue-wait`` seconds in the queue (uniform) and ``--startup`` seconds for its
workers to connect, and retires at its lifetime, derived from ``--walltime`` as a launcher
profile derives it (lifetime 85 %, stagger 5 % of the walltime). Two policies, on the same
trials (lognormal durations, ``--mean`` seconds, ``--sigma``):

* dask (before): per-worker random stagger; a job is replaced once its worker has been
  gone for Dask's lost-worker timeout (15 s), then waits in the queue and starts (a job
  of several workers never is: with ``--processes`` > 1 only "renewal" runs);
* renewal (after): ``supervisor.clusters.renewal``: one lifetime per job, spread over a
  cohort, each job's replacement asked for ahead of its retirement.

Figures, over the window from the first moment all ``jobs x processes`` workers were up to
the start of the last trial (the final drain is no changeover's doing):

* busy: time-average of min(trials running, target slots) / target slots: how much of
  the capacity asked for worked (goal >= 95 % with jobs expiring every 2 minutes);
* of allocation: trial time that produced a result over the worker time the batch system
  granted (jobs from their start to their end, overlapping replacements included): what
  renewing ahead costs;
* below target: time with fewer workers connected than asked for;
* cut: trials a retiring worker was running (Dask runs them again elsewhere; wasted).
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from unittest import mock

from supervisor.clusters.profile import default_lifetime
from supervisor.clusters.renewal import cohort_spread
from supervisor.perf import harness
from supervisor.perf.changeover_cluster import JobClient, JobCluster
from supervisor.perf.scale_cluster import Clock

GOAL_BUSY = 0.95
POLICIES = ("dask", "renewal")


class _Channel:
    """Stands in for ``supervisor.execution.channel.DriverChannel``: the cluster's inbox."""

    cluster: JobCluster

    def __init__(self, client: Any, topic_name: str) -> None:
        self.topic = topic_name

    def watch(self, future: Any) -> None:
        pass

    def receive(self, timeout: float) -> list[tuple[str, Any]]:
        return self.cluster.pop_due()

    def send_verdict(self, worker: str | None, verdict: Any) -> None:
        pass

    def close(self) -> None:
        pass


def simulate(args: argparse.Namespace, policy: str) -> JobCluster:
    from supervisor.execution import channel
    from supervisor.study.driver import Driver
    from supervisor.study.placement import Placement

    clock = Clock()
    cluster = JobCluster(args, clock, policy)
    with harness.scratch() as folder:
        exp = harness.experiment(
            folder, trials=args.trials, epochs=args.epochs, n_params=4, study="changeover"
        )
        study = harness.open_study(exp, "memory")
        client: Any = JobClient(cluster)  # the part of a distributed.Client the driver uses
        driver = Driver(exp, study, client, slots=args.jobs * args.processes, run_dir=str(folder))
        # Lifetimes are in virtual time: the placement must read the virtual clock.
        driver.placement = Placement(client, clock=lambda: cluster.wall0 + clock.now())
        bound = type("BoundChannel", (_Channel,), {"cluster": cluster})
        clock.set(0.0)
        with mock.patch.object(channel, "DriverChannel", bound):
            driver.run()
    return cluster


def figures(cluster: JobCluster, slots: int) -> dict[str, float]:
    stats = cluster.stats
    t0 = next((t for t, n in stats.alive if n >= slots), 0.0)
    t1 = max(start for start, _ in stats.busy)
    window = max(1e-9, t1 - t0)
    edges = sorted(
        [(max(t0, s), 1) for s, e in stats.busy if e > t0 and s < t1]
        + [(min(t1, e), -1) for s, e in stats.busy if e > t0 and s < t1]
    )
    capped = running = 0.0
    last = t0
    for t, step in edges:
        capped += min(running, slots) * (t - last)
        running, last = running + step, t
    useful = sum(max(0.0, min(e, t1) - max(s, t0)) for s, e in stats.busy)
    granted = sum(
        len(job.workers) * max(0.0, min(job.ended or t1, t1) - max(job.began, t0))
        for job in cluster.jobs.values()
        if job.began is not None
    )
    below, previous, count = 0.0, t0, slots
    for t, n in stats.alive:  # workers connected: a step function
        if t >= t1:
            break
        if t > t0:
            below += (t - previous) * (count < slots)
            previous = t
        count = n
    below += (t1 - previous) * (count < slots)
    retired = sum(1 for j in cluster.jobs.values() if j.ended is not None and t0 < j.ended < t1)
    return {
        "window": window,
        "busy": capped / (slots * window),
        "allocation": useful / granted if granted else 0.0,
        "below": below,
        "changeovers": retired,
        "cut": stats.cut,
        "wasted": stats.wasted,
        "jobs": len(cluster.jobs),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8, help="jobs asked for (min = max)")
    parser.add_argument("--processes", type=int, default=1, help="workers per job")
    parser.add_argument("--walltime", type=float, default=120.0, help="seconds per job")
    parser.add_argument("--spread", type=float, default=None, help="seconds; default: ours")
    parser.add_argument("--queue-wait", default="1,5", help="min,max seconds in the queue")
    parser.add_argument("--startup", type=float, default=3.0, help="job start to connect")
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--mean", type=float, default=5.0, help="mean trial seconds")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dask-ms", type=float, default=1.0, help="driver-side Dask cost")
    parser.add_argument("--dispatch-ms", type=float, default=1.0, help="scheduler to worker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    low, _, high = args.queue_wait.partition(",")
    args.queue_wait = (float(low), float(high or low))
    args.lifetime, args.stagger = default_lifetime(args.walltime)
    if args.spread is None:
        args.spread = cohort_spread(args.lifetime + args.stagger, args.stagger)
    return args


def main() -> None:
    args = parse_args()
    harness.quiet_logs()
    slots = args.jobs * args.processes
    print(
        f"{args.trials} trials, lognormal mean {args.mean:g} s sigma {args.sigma:g}, on "
        f"{args.jobs} jobs x {args.processes} workers; walltime {args.walltime:g} s: "
        f"lifetime {args.lifetime:g} +- {args.stagger:g} s (renewal: one per job, "
        f"{args.lifetime + args.stagger - args.spread:g}-{args.lifetime + args.stagger:g} s);"
        f" queue wait {args.queue_wait[0]:g}-{args.queue_wait[1]:g} s, start-up "
        f"{args.startup:g} s\n",
        flush=True,
    )
    rows: list[list[object]] = []
    busy = 0.0
    for policy in POLICIES:
        if policy == "dask" and args.processes > 1:
            print(
                "dask: a job of several workers is never asked for again once it retired;"
                " the campaign would stall, not simulated\n"
            )
            continue
        start = time.perf_counter()
        found = figures(simulate(args, policy), slots)
        busy = found["busy"]
        rows.append(
            [
                policy,
                f"{100 * found['busy']:.1f}%",
                f"{100 * found['allocation']:.1f}%",
                f"{found['below']:.0f} s ({100 * found['below'] / found['window']:.1f}%)",
                int(found["changeovers"]),
                f"{int(found['cut'])} ({found['wasted']:.0f} s)",
                int(found["jobs"]),
                f"{found['window']:.0f} s",
                f"{time.perf_counter() - start:.0f} s",
            ]
        )
    headers = [
        "policy",
        "busy",
        "of allocation",
        "below target",
        "changeovers",
        "cut (wasted)",
        "jobs",
        "window",
        "real time",
    ]
    print(harness.table(headers, rows))
    print(
        f"\nrenewal: {100 * busy:.1f}% busy "
        f"({harness.verdict(busy, GOAL_BUSY, True)} >= {100 * GOAL_BUSY:.0f}%)"
    )


if __name__ == "__main__":
    main()
