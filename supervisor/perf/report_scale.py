"""Cost of the campaign report at scale: a synthetic campaign written straight into storage.

    python -m supervisor.perf.report_scale [--trials 10000] [--objectives 1|2] [--keep DIR]

Writes a run directory (``run.json`` + journal file, as ``supervisor search`` leaves it)
holding ``--trials`` trials with the attributes the driver stores (worker, host, start and
end times, duration, metrics, a per-epoch history, errors and tracebacks for failures), the
states a long campaign has (complete, pruned, failed, running, waiting), 64 workers on 16
nodes with stragglers, and speech/GAN/basecaller artifacts for the best trial. Then prints
the seconds ``supervisor report`` takes on it (journal replay included) and the size of
the page, and the CPU seconds of ``supervisor status`` with its driver alive: its first look
(the journal replayed whole; it leaves the snapshot) and the next (from the snapshot). The
issue asks for < 30 s and < 20 MB at 10,000 trials.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

STUDY = "scale"
WORKERS = 64
HOSTS = 16
EPOCHS = 20
DRIVER = "login01:12345:ab12cd"
PARAMS = {
    "learning_rate": ("float", 1e-4, 3e-2),
    "filters1": ("int", 4, 16),
    "filters2": ("int", 8, 32),
    "dense_units": ("int", 16, 128),
    "dropout": ("float", 0.0, 0.5),
    "optimizer": ("cat", "adam", "sgd", "rmsprop"),
    "momentum": ("float", 0.0, 0.95),  # only with sgd, as in search_spaces/weather.yaml
}
TRACEBACK = "".join(
    f'  File "/opt/supervisor/benchmarks_sci/weather/model.py", line {100 + i}, in fit\n'
    "    history = model.fit(x, y, epochs=epochs, callbacks=callbacks)\n"
    for i in range(20)
)


def make_campaign(run_dir: Path, n_trials: int, n_objectives: int = 1, seed: int = 0) -> float:
    """Write the campaign into ``run_dir``; returns the seconds it took."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import TrialState, create_trial

    import supervisor.rundir as rundir
    from supervisor.study import attrs
    from supervisor.study.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_record(
        run_dir,
        rundir.RunRecord(STUDY, None, "search_spaces/weather.yaml", "supervisor search x.yaml"),
    )
    storage = open_storage(rundir.journal_url(run_dir))
    both: list[Literal["minimize", "maximize"]] = ["maximize", "minimize"]
    directions = both[:n_objectives]
    study = optuna.create_study(study_name=STUDY, storage=storage, directions=directions)
    objectives = ["val_accuracy", "node_seconds"][:n_objectives]
    config = {
        "study": STUDY,
        "benchmark": {"name": "weather", "options": {"task": "tc", "n_train": 2000}},
        "objectives": [
            {"metric": m, "direction": d} for m, d in zip(objectives, directions, strict=True)
        ],
        "params": {name: str(spec) for name, spec in PARAMS.items()},
        "fixed": {"kernel_size": 5, "batch_size": 64},
        "sampler": {"name": "tpe", "options": {}},
        "budget": {"trials": n_trials + 50, "epochs": EPOCHS, "timeout": None},
        "seed": 7,
    }
    study.set_user_attr(attrs.CONFIG, config)
    study.set_user_attr(attrs.OBJECTIVES, objectives)
    study.set_user_attr(attrs.BENCHMARK, "weather")
    dists: dict[str, Any] = {
        "learning_rate": FloatDistribution(1e-4, 3e-2, log=True),
        "filters1": IntDistribution(4, 16, step=4),
        "filters2": IntDistribution(8, 32, step=8),
        "dense_units": IntDistribution(16, 128, log=True),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
        "optimizer": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
        "momentum": FloatDistribution(0.0, 0.95),
    }
    # Workers take the next trial as soon as they are free; a few trials are stragglers.
    free_at = np.full(WORKERS, 0.0)
    # Trials are scheduled from 0 and shifted at the end so that the campaign runs now.
    start0 = 0.0
    driver = DRIVER
    n_running, n_waiting = min(16, n_trials // 10), min(8, n_trials // 20)
    n_started = n_trials - n_waiting
    trials = []
    best: list[tuple[float, int]] = []
    for number in range(n_trials):
        params: dict[str, Any] = {
            "learning_rate": float(10 ** rng.uniform(-4, math.log10(3e-2))),
            "filters1": int(rng.choice([4, 8, 12, 16])),
            "filters2": int(rng.choice([8, 16, 24, 32])),
            "dense_units": round(2 ** float(rng.uniform(4, 7))),
            "dropout": round(float(rng.integers(0, 6)) * 0.1, 1),
            "optimizer": str(rng.choice(["adam", "sgd", "rmsprop"])),
        }
        if params["optimizer"] == "sgd":
            params["momentum"] = float(rng.uniform(0, 0.95))
        trial_dists = {k: dists[k] for k in params}
        if number >= n_started:
            trials.append(
                create_trial(
                    state=TrialState.WAITING,
                    params=params,
                    distributions=trial_dists,
                    system_attrs={"fixed_params": params},
                )
            )
            continue
        worker = int(np.argmin(free_at))
        start = start0 + free_at[worker] + rng.exponential(0.5)
        duration = float(rng.lognormal(math.log(60), 0.35)) * (6 if rng.random() < 0.01 else 1)
        free_at[worker] = start - start0 + duration
        roll = rng.random()
        state = (
            TrialState.RUNNING
            if number >= n_started - n_running
            else TrialState.FAIL
            if roll < 0.06
            else TrialState.PRUNED
            if roll < 0.14
            else TrialState.COMPLETE
        )
        quality = 1.0 - abs(math.log10(params["learning_rate"]) + 2.5) / 3
        acc = float(np.clip(0.55 + 0.4 * quality + rng.normal(0, 0.03), 0.0, 1.0))
        epochs = EPOCHS if state != TrialState.PRUNED else int(rng.integers(2, EPOCHS // 2))
        if state == TrialState.RUNNING:
            epochs = int(rng.integers(0, EPOCHS))
        curve = acc * (1 - np.exp(-np.arange(1, epochs + 1) / 4.0))
        history = [
            {
                "epoch": float(e),
                "val_accuracy": float(curve[e]),
                "accuracy": float(min(1.0, curve[e] * 1.05)),
                "val_loss": float(1.2 - curve[e]),
                "loss": float(1.1 - curve[e]),
            }
            for e in range(epochs)
        ]
        threads = 4
        host = worker % HOSTS
        user_attrs: dict[str, Any] = {
            attrs.DRIVER: driver,
            "worker": f"tcp://10.0.{host}.{10 + worker // HOSTS}:{40000 + worker}",
            "hostname": f"nid{host:05d}",
            "started": start,
        }
        values: list[float] | None = None
        if state != TrialState.RUNNING:
            user_attrs.update(finished=start + duration, duration_s=duration, history=history)
            user_attrs["rss_mb"] = float(900 + rng.normal(0, 40))
            user_attrs["data_seconds"] = 1.5
        if state == TrialState.COMPLETE:
            metrics = {
                "val_accuracy": acc,
                "accuracy": min(1.0, acc * 1.05),
                "val_loss": 1.2 - acc,
                "loss": 1.1 - acc,
                "train_seconds": duration - 2,
                "node_seconds": (duration - 2) * threads,
                "n_params": float(params["dense_units"] * 1000),
            }
            user_attrs["metrics"] = metrics
            values = [metrics[m] for m in objectives]
            user_attrs["artifacts"] = f"trials/{number:06d}/artifacts.npz"
            best.append((acc, number))
        elif state == TrialState.FAIL:
            infra = roll < 0.01
            user_attrs.update(
                failure="infrastructure" if infra else "model",
                error_type="KilledWorker" if infra else "ResourceExhaustedError",
                error=(
                    f"worker {user_attrs['worker']} died"
                    if infra
                    else "OOM when allocating tensor with shape[64,16,32,32] on "
                    f"/job:localhost/replica:0/task:0/device:CPU:0 (trial {number})"
                ),
                traceback="Traceback (most recent call last):\n" + TRACEBACK,
            )
        ivals = {e: float(curve[e]) for e in range(epochs)} if n_objectives == 1 else {}
        trial = create_trial(
            state=state,
            params=params,
            distributions=trial_dists,
            values=values,
            intermediate_values=ivals,
            user_attrs=user_attrs,
        )
        trial.datetime_start = dt.datetime.fromtimestamp(start)
        if state.is_finished():
            trial.datetime_complete = dt.datetime.fromtimestamp(start + duration)
        trials.append(trial)
    now = time.time()
    last = max(
        [t.datetime_complete.timestamp() + 5 for t in trials if t.datetime_complete]
        + [t.datetime_start.timestamp() + 20 for t in trials if t.datetime_start]
    )
    shift = now - last  # the last trial ended 5 s ago, the last one started 20 s ago
    for t in trials:
        if t.datetime_start is not None:
            t.datetime_start += dt.timedelta(seconds=shift)
            t.user_attrs["started"] += shift
        if t.datetime_complete is not None:
            t.datetime_complete += dt.timedelta(seconds=shift)
            t.user_attrs["finished"] += shift
    study.add_trials(trials)
    # The driver is alive (its heartbeat is fresh) for recovery.STALE_AFTER seconds.
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + driver, now)
    for _, number in sorted(best, reverse=True)[:3]:
        write_artifacts(run_dir / f"trials/{number:06d}/artifacts.npz", rng)
    return time.perf_counter() - t0


def write_artifacts(path: Path, rng: np.random.Generator) -> None:
    """What the speech, GAN and basecaller benchmarks save, at their real sizes."""
    n = 57
    confusion = rng.poisson(2, size=(n, n)) + np.diag(rng.poisson(40, size=n))
    k = np.arange(1, 129, dtype=np.float64)
    bases = rng.integers(0, 4, size=300)
    decoded = bases.copy()
    decoded[rng.random(300) < 0.08] = rng.integers(0, 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        confusion=confusion,
        samples=rng.lognormal(0, 0.5, size=(8, 256, 256)).astype(np.float32),
        ps_k=k,
        ps_generated=k**-2.0 * (1 + 0.1 * rng.normal(size=k.size) ** 2),
        ps_heldout=k**-2.0,
        signal=rng.normal(size=4000).astype(np.float32),
        reference=np.array("".join("ACGT"[b] for b in bases)),
        decoded=decoded,
    )


def measure(run_dir: Path, out: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds, and bytes, of ``supervisor report RUN -o OUT`` in a fresh
    process (imports and the journal replay are part of what the user waits for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "supervisor.cli", "report", str(run_dir), "-o", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stat().st_size


def measure_status(run_dir: Path) -> tuple[float, float]:
    """CPU seconds of two ``supervisor status RUN`` in fresh processes, its driver alive
    (a heartbeat now, as a running driver's): the first replays the journal and leaves its
    snapshot, the second opens from it."""
    import optuna

    import supervisor.rundir as rundir
    from supervisor.study import attrs, journal_snapshot
    from supervisor.study.storage import open_storage

    study = optuna.load_study(study_name=STUDY, storage=open_storage(rundir.journal_url(run_dir)))
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + DRIVER, time.time() + 600)
    del study
    # The report's: the first look replays the journal whole, as on a campaign new to it.
    journal_snapshot.path_of(str(run_dir / rundir.JOURNAL_FILE)).unlink(missing_ok=True)
    command = [sys.executable, "-m", "supervisor.cli", "status", str(run_dir)]
    cpu = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return cpu[0], cpu[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--objectives", type=int, choices=(1, 2), default=1)
    parser.add_argument("--keep", type=Path, help="write the run and report here (kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        run_dir = root / "runs" / STUDY
        if (run_dir / "journal.log").exists():
            raise SystemExit(f"{run_dir} exists already; remove it or choose another --keep")
        made = make_campaign(run_dir, args.trials, args.objectives)
        journal = (run_dir / "journal.log").stat().st_size
        print(f"campaign: {args.trials} trials, {args.objectives} objective(s)")
        print(f"  written in {made:.1f} s; journal {journal / 1e6:.1f} MB")
        seconds, cpu, size = measure(run_dir, root / "reports" / f"{STUDY}.html")
        print(f"report:   {seconds:.1f} s wall, {cpu:.1f} s CPU (limit 30 s)")
        print(f"          {size / 1e6:.2f} MB (limit 20 MB)")
        whole, snapshot = measure_status(run_dir)
        print(
            f"status:   {whole:.1f} s CPU (journal replayed), {snapshot:.1f} s (from its snapshot)"
        )
        if args.keep:
            print(f"  {root / 'reports' / f'{STUDY}.html'}")


if __name__ == "__main__":
    main()
