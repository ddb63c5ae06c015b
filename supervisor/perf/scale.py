"""The driver at 1,000 workers and beyond, simulated: busy fraction, ask+tell latency
against the number of finished trials, and driver memory.

    python -m supervisor.perf.scale [--workers 1000] [--trials 10000] [--mean 60]
        [--sigma 0.5] [--epochs 3] [--params 8] [--storage journal] [--sampler random]
    python -m supervisor.perf.scale --trials 20000 --mean 5   # RSS at 20,000 trials
    python -m supervisor.perf.scale --workers 1000 --sampler tpe   # TPE's bounded history
    python -m supervisor.perf.scale --workers 10000 --trials 100000 --sampler tpe [--proposer off]

A run takes as long as the driver's own work: with TPE at 10,000 workers, about 9
minutes for 100,000 trials on two shared cores (2 for 20,000). From 256 workers the
driver has a proposer process (``--proposer auto``, ``supervisor.study.proposals``): it
runs beside the simulation, on the same journal file; its proposals taken, and the asks
the driver's own sampler answered, are printed.
Other load on the machine slows the driver and so lowers the busy fraction: compare
figures measured on the same machine, best an idle one.

What is real and what is simulated. The real ``Driver`` runs, unchanged, on a real study
opened as a campaign opens it (default: the journal file, random sampler, an 8-parameter
space): every ask, suggest, ``set_user_attr``, intermediate ``report``, tell and storage
scan it does per trial is executed and timed. Only Dask is replaced: ``client.submit``
puts the trial on a simulated worker slot (a heap of ``--workers`` slots; queued trials
wait FIFO, as on the scheduler), trial durations are lognormal (``--mean`` seconds,
``--sigma``), and the driver's inbox (``supervisor.execution.channel.DriverChannel``) is fed the
events a worker sends (start, each epoch) and the finished future with a ``TrialResult``
shaped like a real one (metrics, history, worker, host, times).

Time is compressed: the virtual clock jumps over the time when all slots are busy and
the driver waits, and runs at real speed while the driver works, so the driver's real
cost lands on the slots' timelines. On top, each submitted trial costs the driver thread
``--dask-ms`` (Dask's own client-side submit and result fetch, not executed here; Dask's
scheduler costs 0.2-1 ms per task) and reaches its slot ``--dispatch-ms`` after that.

Busy fraction. A slot is idle from its trial's end until the next trial starts on it,
and a trial can only start once the driver has told the finished one, asked and
submitted the next (the default prefetch queues trials ahead only when trials are short
against the driver's round trip, ``supervisor.study.prefetch``: with 60 s trials every
restart waits for the driver's tell, ask and submit, as with ``--prefetch 0``;
``--prefetch N`` queues N ahead, and a slot restarts at once whenever the driver has kept
that queue filled). The fraction is time spent in trials over each slot's window from the campaign
start to the end of its last trial: the final drain, when the budget has no trial left
for a slot, is no driver cost and is not counted (the whole-makespan figure is printed
too). Goals: >= 97 % busy at 1,000 workers; ask+tell p50 <= 10 ms at 10,000 finished
trials; driver RSS <= 1 GB at 20,000 trials.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from supervisor.perf import harness
from supervisor.perf.scale_cluster import Clock, Cluster, SimClient

if TYPE_CHECKING:
    import optuna

GOAL_BUSY = 0.97
GOAL_P50_MS = 10.0
GOAL_RSS_MB = 1024.0
MARKS = (1000, 5000, 10_000, 20_000, 50_000, 100_000)
GOAL_P50_100K_MS = 20.0


# -- the measurements -------------------------------------------------------------------


@dataclass
class Turn:
    """One pass of the driver's loop between two reads of its inbox."""

    seconds: float  # real driver time, including the charged Dask time
    done: int  # finished trials it handled
    finished: int  # finished trials in the study after it


@dataclass
class Probe:
    ask_ms: dict[int, float] = field(default_factory=dict)  # trial number -> ms
    tell_ms: dict[int, float] = field(default_factory=dict)
    told_at: dict[int, int] = field(default_factory=dict)  # trial number -> finished then
    turns: list[Turn] = field(default_factory=list)
    rss: dict[int, float] = field(default_factory=dict)  # finished mark -> MiB
    finished: int = 0
    started: float = field(default_factory=time.perf_counter)
    proposer: str = "none"  # what the proposer did (``supervisor.study.proposals``)


def instrument(study: optuna.Study, probe: Probe) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Time the study's ask as the driver calls it (an instance attribute); returns timed
    stand-ins for the driver's ``suggest``, whose time counts to the ask (samplers do
    their work there: Optuna's ask of define-and-run), and for ``internals.tell``, which
    the driver tells trials with."""
    import supervisor.optuna_internals as internals
    from supervisor.config.params import suggest

    ask, tell = study.ask, internals.tell

    def timed_ask(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        trial = ask(*args, **kwargs)
        probe.ask_ms[trial.number] = 1000 * (time.perf_counter() - start)
        return trial

    def timed_tell(told: optuna.Study, trial: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        tell(told, trial, **kwargs)
        number = trial if isinstance(trial, int) else trial.number
        probe.tell_ms[number] = 1000 * (time.perf_counter() - start)
        probe.finished += 1
        probe.told_at[number] = probe.finished
        if probe.finished in MARKS:
            probe.rss[probe.finished] = harness.rss_mb()
        if probe.finished % 1000 == 0:  # a long run shows it is alive, and how it slows
            real = time.perf_counter() - probe.started
            print(f"  {probe.finished} finished after {real:.0f} s", flush=True)

    def timed_suggest(trial: Any, params: Any) -> dict[str, Any]:
        start = time.perf_counter()
        values = suggest(trial, params)
        probe.ask_ms[trial.number] += 1000 * (time.perf_counter() - start)
        return values

    study.ask = timed_ask  # type: ignore[method-assign]
    return timed_suggest, timed_tell


class SimChannel:
    """Stands in for ``supervisor.execution.channel.DriverChannel``: the inbox is the cluster's."""

    cluster: Cluster
    probe: Probe

    def __init__(self, client: Any, topic_name: str) -> None:
        self.topic = topic_name
        self._turn_start = time.perf_counter()
        self._turn_virtual = self.cluster.clock.now()

    def watch(self, future: Any) -> None:
        pass  # the cluster delivers its end

    def receive(self, timeout: float) -> list[tuple[str, Any]]:
        seconds = self.cluster.clock.now() - self._turn_virtual  # real work + charged Dask
        items = self.cluster.pop_due()
        done = sum(1 for kind, _ in items if kind == "done")
        self.probe.turns.append(Turn(seconds, done, self.probe.finished))
        self._turn_virtual = self.cluster.clock.now()
        return items

    def send_verdict(self, worker: str | None, verdict: Any) -> None:
        pass

    def close(self) -> None:
        pass


def simulate(args: argparse.Namespace) -> tuple[Cluster, Probe, float, float]:
    """Runs the campaign; returns the cluster, the probe, makespan and real seconds."""
    import supervisor.optuna_internals as internals
    from supervisor.execution import channel
    from supervisor.study import driver as driver_module
    from supervisor.study.driver import Driver

    clock = Clock()
    cluster = Cluster(args, clock)
    probe = Probe()
    with harness.scratch() as folder:
        exp = harness.experiment(
            folder,
            trials=args.trials,
            epochs=args.epochs,
            n_params=args.params,
            sampler=args.sampler,
            study="scale",
        )
        url = harness.storage_url(args.storage, folder)
        study = harness.open_study(exp, url)
        timed_suggest, timed_tell = instrument(study, probe)
        sim_channel = type("BoundSimChannel", (SimChannel,), {"cluster": cluster, "probe": probe})
        driver = Driver(
            exp,
            study,
            SimClient(cluster),  # type: ignore[arg-type]
            slots=args.workers,
            prefetch=args.prefetch,
            run_dir=str(folder),
            storage_url=url,
            proposer={"auto": None, "on": True, "off": False}[args.proposer],
        )
        start = time.perf_counter()
        clock.set(0.0)
        with (
            mock.patch.object(channel, "DriverChannel", sim_channel),
            mock.patch.object(driver_module, "suggest", timed_suggest),
            mock.patch.object(internals, "tell", timed_tell),
        ):
            summary = driver.run()
        real = time.perf_counter() - start
        if driver.proposals is not None:
            p = driver.proposals
            probe.proposer = (
                f"{p.taken} taken, {p.missed} asked of the sampler, {p.dropped} stale,"
                f" {p.repeats} already tried"
            )
        probe.rss.setdefault(summary.finished, harness.rss_mb())
    makespan = max(s.last_end for s in cluster.slots)
    return cluster, probe, makespan, real


# -- the report --------------------------------------------------------------------------


def _window(values: list[tuple[int, float]], mark: int) -> list[float]:
    """The values recorded while the finished count was in the last 10 % up to ``mark``."""
    low = mark - max(50, mark // 10)
    return [ms for finished, ms in values if low < finished <= mark]


def report(args: argparse.Namespace, cluster: Cluster, probe: Probe, makespan: float) -> None:
    busy = sum(s.busy for s in cluster.slots)
    window = sum(s.busy + s.idle for s in cluster.slots)
    fraction = busy / window
    whole = busy / (args.workers * makespan)
    demand = args.workers / args.mean  # trials per second the slots finish at full use
    cost = sum(t.seconds for t in probe.turns) / max(1, probe.finished)
    print(
        f"\n{args.trials} trials on {args.workers} simulated workers; durations lognormal,"
        f" mean {args.mean:g} s, sigma {args.sigma:g}; {args.epochs} epochs; "
        f"{args.params} params; {args.sampler} sampler; {args.storage} storage; "
        f"prefetch {'default' if args.prefetch is None else args.prefetch}; "
        f"proposer {args.proposer}: {probe.proposer}\n"
    )
    print(
        f"busy fraction: {100 * fraction:.2f} % ({harness.verdict(fraction, GOAL_BUSY, True)}"
        f" >= {100 * GOAL_BUSY:.0f} %); whole makespan incl. the final drain "
        f"{100 * whole:.1f} %; virtual makespan {makespan:.0f} s"
    )
    print(
        f"driver: {cost * 1000:.2f} ms of its thread per finished trial on average, so at most "
        f"{1 / cost:.0f} trials/s; the slots finish {demand:.1f}/s at full use: driver "
        f"utilisation {100 * demand * cost:.0f} % (it keeps up while the mean trial is >= "
        f"{args.workers * cost:.0f} s; above 100 % only the queued trials keep slots busy)\n"
    )
    told = [(at, n) for n, at in probe.told_at.items() if n in probe.ask_ms]
    asks = [(at, probe.ask_ms[n]) for at, n in told]
    tells = [(at, probe.tell_ms[n]) for at, n in told]
    pairs = [(at, probe.ask_ms[n] + probe.tell_ms[n]) for at, n in told]
    # A turn's cost is shared by the trials it finished (a slow driver batches many).
    turns = [(t.finished, 1000 * t.seconds / t.done) for t in probe.turns for _ in range(t.done)]
    rows: list[list[Any]] = []
    for mark in (*MARKS, probe.finished):
        if mark > probe.finished or any(r[0] == mark for r in rows):
            continue
        both, turn = _window(pairs, mark), _window(turns, mark)
        rows.append(
            [
                mark,
                harness.percentile(_window(asks, mark), 50),
                harness.percentile(_window(tells, mark), 50),
                harness.percentile(both, 50),
                harness.percentile(both, 99),
                harness.percentile(turn, 50),
                harness.percentile(turn, 99),
                probe.rss.get(mark, math.nan),
            ]
        )
    headers = [
        "finished",
        "ask p50 ms",
        "tell p50 ms",
        "ask+tell p50",
        "ask+tell p99",
        "driver/trial p50",
        "driver/trial p99",
        "RSS MiB",
    ]
    print(harness.table(headers, rows))
    print(
        "\nask+tell: study.ask, the suggestion of every parameter and the tell of one "
        "trial; driver/trial: the whole "
        "loop turn that handled a finished trial (results, user attrs, scans, the next ask "
        f"and submit, {args.dask_ms:g} ms Dask) per trial it finished."
    )
    at = [r for r in rows if r[0] == 10_000]
    if at:
        print(
            f"goal ask+tell p50 <= {GOAL_P50_MS:g} ms at 10,000: {at[0][3]:.2f} ms "
            f"{harness.verdict(at[0][3], GOAL_P50_MS)}"
        )
    at = [r for r in rows if r[0] == 100_000]
    if at:
        print(
            f"goal ask+tell p50 <= {GOAL_P50_100K_MS:g} ms at 100,000: {at[0][3]:.2f} ms "
            f"{harness.verdict(at[0][3], GOAL_P50_100K_MS)}"
        )
    rss = probe.rss.get(20_000)
    if rss is not None:
        print(
            f"goal RSS <= {GOAL_RSS_MB:.0f} MiB at 20,000: {rss:.0f} MiB "
            f"{harness.verdict(rss, GOAL_RSS_MB)}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--mean", type=float, default=60.0, help="mean trial seconds")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma")
    parser.add_argument("--epochs", type=int, default=3, help="epoch events per trial")
    parser.add_argument("--params", type=int, default=8)
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--storage", default="journal", help="journal | memory | sqlite | URL")
    parser.add_argument("--prefetch", type=int, default=None, help="default: sized by the driver")
    parser.add_argument(
        "--proposer", choices=("auto", "on", "off"), default="auto", help="proposals beside it"
    )
    parser.add_argument("--dask-ms", type=float, default=1.0, help="driver-side Dask cost")
    parser.add_argument("--dispatch-ms", type=float, default=1.0, help="scheduler to worker")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    harness.quiet_logs()
    cluster, probe, makespan, real = simulate(args)
    print(f"simulated in {real:.0f} s of real time", flush=True)
    report(args, cluster, probe, makespan)


if __name__ == "__main__":
    main()
