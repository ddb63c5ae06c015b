"""The supervisor against Ray Tune and DeepHyper on the same workloads, as ratios.

    python -m supervisor.perf.compare [--venv /work/compare-venv] [--workers 2]
        [--noop-trials 300] [--sleep-trials 60] [--seconds 0.5] [--only ray,deephyper]
        [--ray-defaults-trials 30]
    python -m supervisor.perf.compare --install-only

Ray Tune and DeepHyper are never dependencies of the project: the first run makes a
virtual environment of their own (``--venv``) with ``python3 -m venv`` and installs them
there from PyPI; a framework whose install fails (no wheel for this Python, say) is
reported with why and left out. Each framework then runs ``supervisor.perf.compare_runner``
in that environment, which prints its timing as one JSON line.

Workloads, each on ``--workers`` parallel slots: ``noop`` (N trials that return at once)
and ``sleep`` (trials that sleep ``--seconds``; ideal wall N x seconds / workers). Each
framework's wall counts from its search call to its return (cluster start-up excluded,
as for the supervisor, whose driver runs on a warm local Dask cluster). "x supervisor" =
the framework's wall per trial / the supervisor's in this same run: above 1 the supervisor
is faster. A raw Dask ``client.map`` of the same trials is listed as the floor.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from supervisor.perf import harness

# Framework -> (pip requirement, a module that imports only when it is usable).
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "ray": ("ray[tune]", "ray.tune"),
    "deephyper": ("deephyper", "deephyper.hpo"),
}
RUNNER = Path(__file__).with_name("compare_runner.py")
INSTALL_TIMEOUT = 1200.0


@dataclass
class Timing:
    seconds: float
    trials: int


def ensure_venv(venv: Path) -> Path:
    """The comparison environment's interpreter, made on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} (python3 -m venv)", flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    return python


def ensure_framework(python: Path, name: str) -> str | None:
    """Install ``name`` into the environment unless it imports already; None when usable,
    else why not (the tail of pip's or Python's error)."""
    requirement, module = FRAMEWORKS[name]
    if _imports(python, module):
        return None
    print(f"installing {requirement} into {python.parent.parent} ...", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", requirement],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"pip install {requirement} took over {INSTALL_TIMEOUT:.0f} s"
    if done.returncode != 0:
        return f"pip install {requirement} failed: {_tail(done.stderr or done.stdout)}"
    print(f"  installed in {time.perf_counter() - start:.0f} s", flush=True)
    if not _imports(python, module):
        return f"{module} does not import after installing {requirement}"
    return None


def _imports(python: Path, module: str) -> bool:
    probe = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, timeout=300
    )
    return probe.returncode == 0


def _tail(text: str, lines: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def run_framework(
    python: Path, name: str, workload: str, trials: int, args: argparse.Namespace, *extra: str
) -> Timing | str:
    """The framework's timing, or why there is none."""
    command = [
        str(python),
        str(RUNNER),
        name,
        workload,
        f"--trials={trials}",
        f"--workers={args.workers}",
        f"--seconds={args.seconds}",
        *extra,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return f"over {args.timeout:.0f} s"
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            out = json.loads(line)
            return Timing(float(out["seconds"]), int(out["trials"]))
    return f"exit {done.returncode}: {_tail(done.stderr or done.stdout)}"


def run_supervisor(args: argparse.Namespace) -> dict[str, Timing]:
    """The same workloads through the real driver on a warm local cluster, and a raw
    Dask map of each for reference."""
    out: dict[str, Timing] = {}
    with harness.local_cluster(args.workers) as handle, harness.scratch() as folder:
        harness.warm_up(handle.client, 1)
        for workload, trials, seconds in (
            ("noop", args.noop_trials, 0.0),
            ("sleep", args.sleep_trials, args.seconds),
        ):
            params = harness.random_params(1, trials)
            raw = harness.timed_map(
                handle.client, harness.direct_trial, params, [seconds] * trials
            )
            out[f"{workload}/raw"] = Timing(raw, trials)
            exp = harness.experiment(
                folder, trials=trials, seconds=seconds, study=f"compare-{workload}"
            )
            done = harness.run_driver(exp, handle)
            out[workload] = Timing(done.seconds, done.summary.finished)
            print(
                f"  supervisor {workload}: {done.seconds:.2f} s (raw map {raw:.2f} s)", flush=True
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venv", type=Path, default=Path("/work/compare-venv"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop-trials", type=int, default=300)
    parser.add_argument("--sleep-trials", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=0.5, help="per sleep trial")
    parser.add_argument("--only", default=",".join(FRAMEWORKS), help="ray,deephyper")
    parser.add_argument(
        "--ray-defaults-trials",
        type=int,
        default=0,
        help="also time Ray Tune untuned on this many no-op trials (it is slow)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per framework run")
    parser.add_argument("--install-only", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(FRAMEWORKS))
    if unknown:
        parser.error(f"unknown framework(s) {', '.join(unknown)}; known: {', '.join(FRAMEWORKS)}")

    python = ensure_venv(args.venv)
    usable = []
    for name in names:
        why = ensure_framework(python, name)
        if why:
            print(f"{name}: left out: {why}", flush=True)
        else:
            usable.append(name)
    if args.install_only:
        print(f"ready in {args.venv}: {', '.join(usable) or 'none'}")
        return

    harness.quiet_logs()
    ours = run_supervisor(args)  # first, and its cluster closed before the others start
    results: dict[tuple[str, str], Timing | str] = {}
    runs = [(n, w) for n in usable for w in ("noop", "sleep")]
    for name, workload in runs:
        trials = args.noop_trials if workload == "noop" else args.sleep_trials
        results[(name, workload)] = run_framework(python, name, workload, trials, args)
        print(f"  {name} {workload}: {_shown(results[(name, workload)])}", flush=True)
    if "ray" in usable and args.ray_defaults_trials:
        label = ("ray (defaults)", "noop")
        results[label] = run_framework(
            python, "ray", "noop", args.ray_defaults_trials, args, "--ray-defaults"
        )
        print(f"  ray defaults noop: {_shown(results[label])}", flush=True)
    report(args, ours, results)


def _shown(result: Timing | str) -> str:
    return f"{result.seconds:.2f} s" if isinstance(result, Timing) else result


def report(
    args: argparse.Namespace,
    ours: dict[str, Timing],
    results: dict[tuple[str, str], Timing | str],
) -> None:
    print(
        f"\n{args.workers} workers; noop: {args.noop_trials} trials; sleep: "
        f"{args.sleep_trials} trials x {args.seconds:g} s (ideal "
        f"{args.sleep_trials * args.seconds / args.workers:.1f} s)\n"
    )
    rows: list[list[object]] = []
    for workload in ("noop", "sleep"):
        mine = ours[workload]
        ideal = args.sleep_trials * args.seconds / args.workers if workload == "sleep" else 0.0
        entries: list[tuple[str, Timing | str]] = [
            ("supervisor", mine),
            ("raw Dask map", ours[f"{workload}/raw"]),
        ]
        entries += [(name, r) for (name, w), r in results.items() if w == workload]
        for name, r in entries:
            if isinstance(r, str):
                rows.append([workload, name, "-", "-", "-", "-", f"failed: {r[:60]}"])
                continue
            rows.append(
                [
                    workload,
                    name,
                    r.trials,
                    r.seconds,
                    r.trials / r.seconds,
                    (r.seconds / r.trials) / (mine.seconds / mine.trials),
                    f"{r.seconds / ideal:.3f}x ideal" if ideal else "",
                ]
            )
    headers = ["workload", "system", "trials", "wall s", "trials/s", "x supervisor", "note"]
    print(harness.table(headers, rows))
    print(
        "\nx supervisor: wall per trial relative to the supervisor's in this run (above 1:"
        " slower than the supervisor)."
    )


if __name__ == "__main__":
    main()
