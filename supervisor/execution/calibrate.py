"""``supervisor calibrate BENCHMARK``: which packing of trials on this node trains fastest.

For every (threads per trial x trials per node) that fits the node's cores, it starts
that many probe processes at once, each sized with the same thread settings a worker
slot gets and, as a search's trial processes, not pinned to cores of their own (see
``measure``), lets each train the benchmark's default model for one warm-up epoch
(tracing, caches), then times the next epochs with all probes released together, so the
timed sections overlap. The packing with the highest
aggregate samples/s is recommended; it can be saved for ``supervisor search`` on this
host and written into a launcher profile.

Probes are separate processes, not threads: packed trials on a real node are separate
worker processes too, with their own framework thread pools.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.benchmarks import registry
from supervisor.benchmarks.cores import usable_cpus
from supervisor.errors import UserError

CACHE_ENV = "SUPERVISOR_CALIBRATION_DIR"
# A packing's probes get this many times the single-trial probe's time (at least the
# floor): one that deadlocks, or waits on a GPU that never answers, hung calibrate forever.
TIMEOUT_FACTOR = 10
TIMEOUT_FLOOR_S = 120.0
# The first probe (one trial alone, which sets the others' limit) has this long by
# default, ``--probe-timeout``: it had none, and a hung one hung calibrate forever.
FIRST_TIMEOUT_S = 3600.0


class ProbeTimeout(UserError):
    """A packing's probes gave no result within their time limit; they were killed."""


@dataclass(frozen=True)
class Packing:
    threads: int  # per trial
    trials: int  # per node

    @property
    def cores(self) -> int:
        return self.threads * self.trials


@dataclass(frozen=True)
class Measurement:
    packing: Packing
    per_trial: list[float]  # samples/s of each concurrent trial
    error: str = ""  # why this packing could not run (its probes out of memory)
    kept: bool = False  # measured by an earlier calibrate that was stopped

    @property
    def aggregate(self) -> float:
        return sum(self.per_trial)


@dataclass(frozen=True)
class Calibration:
    benchmark: str
    host: str
    cpu: str
    cores: int
    options: dict[str, Any]
    threads_per_trial: int
    trials_per_node: int
    samples_per_s: float
    table: list[dict[str, Any]]
    created: float
    gpus: int = 0  # the node's GPUs, which the probes were spread over (gpu_share)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid(cores: int) -> list[Packing]:
    """Threads per trial in powers of two (and all cores), trials per node likewise, and
    for each of these counts the packing that fills the node with it: on a 40-core node
    the powers of two alone tried no whole-node packing but 1 x 40 and 40 x 1, and
    recommended 4 trials x 8 threads with 8 cores idle over an unmeasured 4 x 10."""
    counts = sorted({1 << i for i in range(cores.bit_length()) if 1 << i <= cores} | {cores})
    pairs = {(t, k) for t in counts for k in counts if t * k <= cores}
    while True:  # a few rounds: each count's filling packing may bring a new count
        filling = {(t, cores // t) for t, _ in pairs} | {(cores // k, k) for _, k in pairs}
        if filling <= pairs:
            return [Packing(t, k) for t, k in sorted(pairs)]  # (1, 1) first: sets the limits
        pairs |= filling


def usable_cores() -> list[int]:
    """The cores probes are placed on: this process's, within its CPU quota."""
    return usable_cpus()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(
    target: str,
    options: dict[str, Any],
    packing: Packing,
    epochs: int,
    cores: list[int] | None = None,
    *,
    tuned: bool = True,
    xla: str = "auto",
    timeout: float | None = None,
) -> Measurement:
    """Run ``packing.trials`` probes at once; their samples/s. ``tuned``: each with the
    worker slot's thread settings; otherwise with the frameworks' defaults (every probe
    sizes its pools for the whole node), for comparison. ``timeout``: seconds the probes
    have, start to result, before they are killed. ``cores``: the cores the probes share
    (``calibrate --cores``: an allocation of that many), None: this process's.

    No probe has cores of its own: each had (``sched_setaffinity``) where a search's
    trials run wherever the OS puts them within their job's cores, so the packing a
    search used was measured otherwise than it ran. Pinning gained nothing measurable
    (2 x 1-thread weather trials on 2 cores, 20 paired rounds: pinned/unpinned 0.98, with
    a busy process beside them 0.97), and pinned trials of two searches on one machine
    would share its first cores."""
    from supervisor.execution.gpu_share import node_gpus, slot_environment
    from supervisor.execution.node import thread_environment, without_storage_secrets

    gpus = node_gpus(os.environ)
    procs: list[subprocess.Popen[str]] = []
    logs: list[Any] = []
    with contextlib.ExitStack() as stack:
        for slot in range(packing.trials):
            # As a trial's process: without the storage's password (the plugin's code runs
            # there and its output is shown).
            env = without_storage_secrets(os.environ)
            # On a GPU node, spread over its GPUs as the search's trials are.
            env.update(slot_environment(slot, packing.trials, gpus, env))
            if tuned:
                env.update(thread_environment(packing.threads))
            else:
                env = {k: v for k, v in env.items() if not k.endswith("_NUM_THREADS")}
            request = {
                "target": target,
                "options": options,
                "epochs": epochs,
                "threads": packing.threads if tuned else 0,
                "cores": cores or [],
                "xla": xla,
            }
            # Framework chatter goes to a file, shown only if the probe fails.
            logs.append(stack.enter_context(tempfile.TemporaryFile("w+")))
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "supervisor.execution.calibrate_probe",
                    json.dumps(request),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                text=True,
                env=env,
            )
            stack.callback(_stop, proc)
            procs.append(proc)
        expired = threading.Event()

        def expire() -> None:  # killed probes close their stdout: the reads below end
            expired.set()
            for proc in procs:
                _kill(proc)

        if timeout is not None:
            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)
        try:
            for proc, log in zip(procs, logs, strict=True):  # every probe has warmed up ...
                _expect(proc, log, "ready")
            for proc in procs:  # ... before any is timed
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):  # died since: its rate says so
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
            rates = [float(_expect(p, log, "rate")) for p, log in zip(procs, logs, strict=True)]
        except UserError:
            if expired.is_set():
                raise ProbeTimeout(f"timed out after {timeout:.0f} s") from None
            raise
    return Measurement(packing, rates)


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the probe and what it started (a compiler, a data loader), unless it ended.
    Not by process group: the probes stay in the terminal's, which Ctrl-C and a hangup
    reach even where calibrate is killed before it can stop them."""
    import psutil  # type: ignore[import-untyped]  # distributed's dependency

    if proc.poll() is not None:
        return
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:  # ended meanwhile
        family = []
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()


def _stop(proc: subprocess.Popen[str]) -> None:
    _kill(proc)
    proc.wait()


def _expect(proc: subprocess.Popen[str], log: Any, word: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    key, _, value = line.partition(" ")
    if key == "error":
        raise UserError(f"calibration probe failed: {value}")
    if key != word:
        log.seek(0)
        tail = " | ".join(log.read().strip().splitlines()[-3:])
        raise UserError(f"calibration probe died (exit {proc.wait()}): {tail}")
    return value


def calibrate(
    benchmark: str,
    target: str,
    options: dict[str, Any],
    *,
    epochs: int = 1,
    max_cores: int | None = None,
    on_result: Any = None,
    first_timeout: float = FIRST_TIMEOUT_S,
) -> Calibration:
    """``first_timeout``: seconds the first probe (one trial alone) has; every later
    packing gets ``TIMEOUT_FACTOR`` times what it took, at least ``TIMEOUT_FLOOR_S``."""
    from supervisor.execution.gpu_share import node_gpus

    usable = usable_cores()
    cores = usable[: max_cores or None]
    # ``--cores N`` stands for an allocation of N cores: the probes share those, as a
    # job's trials share its cores; else they run where a search's would, anywhere here.
    shared = cores if len(cores) < len(usable) else None
    results: list[Measurement] = []
    limit, why = first_timeout, ""
    # Each packing is kept as it is measured: a calibrate killed after an hour (Ctrl-C,
    # its job's walltime) lost every packing, and the next one measured them again.
    progress = progress_path(benchmark, len(cores))
    same = {"target": target, "options": options, "epochs": epochs, "cores": len(cores)}
    # Probes are no longer pinned: a stopped calibrate's pinned measurements are not kept.
    same |= {"cpu": cpu_model(), "pinned": False}
    kept = _kept_progress(progress, same)
    for packing in grid(len(cores)):
        started = time.monotonic()
        if (row := kept.get(f"{packing.threads}x{packing.trials}")) is not None:
            m = Measurement(packing, row["per_trial"], row.get("error", ""), kept=True)
            if not results:
                limit, why = row["limit"], row["why"]
            results.append(m)
            if on_result is not None:
                on_result(m)
            continue
        try:
            m = measure(target, options, packing, epochs, shared, timeout=limit)
        except ProbeTimeout as exc:
            if not results:  # nothing measured: no packing can be judged
                raise ProbeTimeout(
                    f"the first probe (1 trial x {packing.threads} thread(s) alone) {exc}:"
                    " it loads the data, trains a warm-up epoch and the timed one(s) in that"
                    " time; nothing was measured"
                ) from None
            m = Measurement(packing, [], f"{exc}{why}")
        except UserError as exc:
            if not results:  # one trial alone failed: the benchmark, not the packing
                raise
            # Many probes at once may not fit the node's memory (the OOM killer took one):
            # that packing is out, not the hour of measurements before it.
            m = Measurement(packing, [], str(exc))
        if not results:
            took = time.monotonic() - started
            limit = max(TIMEOUT_FLOOR_S, TIMEOUT_FACTOR * took)
            floor = f"at least {TIMEOUT_FLOOR_S:.0f} s"
            why = f" ({TIMEOUT_FACTOR} x the lone trial's {took:.1f} s, {floor})"
        results.append(m)
        kept[f"{packing.threads}x{packing.trials}"] = {
            "per_trial": m.per_trial,
            "error": m.error,
            **({"limit": limit, "why": why} if len(results) == 1 else {}),
        }
        with contextlib.suppress(OSError):  # a convenience: the measurement goes on
            atomic.write(progress, json.dumps({**same, "measured": kept}) + "\n")
        if on_result is not None:
            on_result(m)
    best = max((m for m in results if not m.error), key=lambda m: m.aggregate)
    table = [
        {
            "threads_per_trial": m.packing.threads,
            "trials_per_node": m.packing.trials,
            "samples_per_s": round(m.aggregate, 1),
            "per_trial": [round(r, 1) for r in m.per_trial],
            **({"error": m.error} if m.error else {}),
        }
        for m in results
    ]
    return Calibration(
        benchmark=benchmark,
        host=socket.gethostname(),
        cpu=cpu_model(),
        cores=len(cores),
        options=options,
        threads_per_trial=best.packing.threads,
        trials_per_node=best.packing.trials,
        samples_per_s=round(best.aggregate, 1),
        table=table,
        created=time.time(),
        gpus=len(node_gpus(os.environ)),
    )


# -- where calibrations are kept ----------------------------------------------------------


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "supervisor"
    return Path(os.environ.get(CACHE_ENV, default / "calibration"))


def cache_path(
    benchmark: str, host: str | None = None, cores: int | None = None, options: Any = None
) -> Path:
    """A calibration's file: one per core count and benchmark options, so that a quick
    ``--cores 4`` or ``--tiny`` check no longer replaced the whole node's hour of
    measurements (``cores`` None: the name before they counted). Under the benchmark's
    canonical name: calibrated as ``weather``, a space file's ``benchmark:
    benchmarks_sci.weather:WeatherBenchmark`` (or the reverse) found no calibration."""
    return _cache_path(registry.canonical(benchmark), host, cores, options)


def _cache_path(benchmark: str, host: str | None, cores: int | None, options: Any) -> Path:
    where = f"{benchmark}@{host or socket.gethostname()}"
    if cores is None:
        return cache_dir() / f"{where}.json"
    text = json.dumps(options, sort_keys=True, default=str)
    mark = "" if options is None else f".{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return cache_dir() / f"{where}.{cores}cores{mark}.json"


def progress_path(benchmark: str, cores: int) -> Path:
    """Where ``calibrate`` keeps the packings measured so far, until ``save``."""
    return cache_path(benchmark, cores=cores).with_suffix(".partial.json")


def save(cal: Calibration) -> Path:
    path = cache_path(cal.benchmark, cal.host, cal.cores, cal.options)
    atomic.write(path, json.dumps(cal.to_dict(), indent=2) + "\n")
    progress_path(cal.benchmark, cal.cores).unlink(missing_ok=True)  # complete: nothing to resume
    return path


def saved_for_host(benchmark: str, options: Any = None) -> tuple[Calibration | None, str]:
    """This host's saved calibration of ``benchmark`` if it still matches the node (with
    ``options``, else the newest with others), else why one that was saved does not
    apply ("" when none was): a search that ignored it without a word packed trials by
    its default after the user had calibrated."""
    import glob

    cores, cpu = len(usable_cores()), cpu_model()
    # Also the name as written: saved before calibrations were kept under the canonical one.
    names = dict.fromkeys([registry.canonical(benchmark), benchmark])

    def saved(pattern: str) -> list[Path]:  # newest first, no calibrate's progress
        found = [
            p
            for name in names
            for p in cache_dir().glob(
                glob.escape(_cache_path(name, None, None, None).stem) + pattern
            )
            if not p.name.endswith(".partial.json")
        ]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    exact = [cache_path(benchmark, cores=cores, options=options)] if options is not None else []
    old = [_cache_path(name, None, None, None) for name in names]
    found = [*exact, *saved(f".{cores}cores*.json"), *old]
    path = next((p for p in [*found, *saved(".*cores*.json")] if p.is_file()), None)
    if path is None:
        return None, ""
    try:
        cal = Calibration(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}): rerun supervisor calibrate"
    if cal.cores != cores or cal.cpu != cpu:  # another allocation size, or machine
        shape = (
            f"{cal.cores} core(s), this node has {cores} usable"
            if cal.cores != cores
            else f"{cal.cpu}, this node's CPU is {cpu}"
        )
        return None, (
            f"{path} was measured on {shape}: not used; rerun"
            f" supervisor calibrate {benchmark} here"
        )
    return cal, ""


def _kept_progress(path: Path, same: dict[str, Any]) -> dict[str, Any]:
    """The packings a stopped calibrate measured under the same conditions (benchmark,
    options, epochs, cores, CPU) as this one, by "THREADSxTRIALS"; else none."""
    try:
        found = json.loads(path.read_text())
        measured = dict(found["measured"])
        float(measured["1x1"]["limit"]), str(measured["1x1"]["why"])  # the lone trial's
        for row in measured.values():
            [float(r) for r in row["per_trial"]], str(row.get("error", ""))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # none, or damaged
        return {}
    return measured if {k: found.get(k) for k in same} == json.loads(json.dumps(same)) else {}
