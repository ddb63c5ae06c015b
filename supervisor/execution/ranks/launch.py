"""The worker side of a multi-rank trial: ``run_ranked_trial(spec, ranks) -> TrialResult``.

Starts ``mpiexec -n K python -m mpi4py -m supervisor.execution.ranks.run WORKDIR`` on this node
(the ranks train data-parallel, see ``supervisor.execution.ranks.allreduce``), relays rank 0's
epochs to ``on_epoch`` and its verdicts back, and turns what the ranks leave in
WORKDIR into one ``TrialResult``. It never raises and never hangs: a failed rank
aborts the MPI job with its error; a time limit, a cancel or a dead launcher ends the
ranks. Imports neither MPI nor a framework (the driver may import it).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from supervisor.execution.ranks.run import PARENT_ENV, SOCKET_FILE, SPEC_FILE, result_file
from supervisor.execution.trial import TIME_LIMIT, EpochHook, TrialResult, TrialSpec, model_failure
from supervisor.execution.wire import receive, send

MPIEXEC_ENV = "SUPERVISOR_MPIEXEC"  # e.g. "srun --mpi=pmi2" or another mpiexec
POLL_SECONDS = 0.25
TERM_GRACE_SECONDS = 5.0
LOG_TAIL = 4000
# Left by an enclosing MPI job (a dask-mpi campaign): the trial's own mpiexec must not
# think it is part of that job.
_OUTER_MPI = ("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_")

_running: dict[tuple[str, int], _Cancel] = {}
_lock = threading.Lock()


class _Cancel:
    def __init__(self) -> None:
        self.requested = False


def find_mpiexec() -> list[str] | None:
    """The launcher command: $SUPERVISOR_MPIEXEC, else the mpich wheel's mpiexec beside
    this interpreter (forking ranks on this node), else mpiexec on the PATH."""
    if os.environ.get(MPIEXEC_ENV):
        return os.environ[MPIEXEC_ENV].split()
    beside = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    if beside:
        # Hydra: fork the ranks here even inside a Slurm/PBS job (K slots of this worker).
        return [beside, "-launcher", "fork"]
    found = shutil.which("mpiexec")
    return [found] if found else None


def cancel_ranked_trials(study_name: str, numbers: list[int]) -> list[int]:
    """Stop the multi-rank trials of this process with these numbers (the driver gave
    up on them); their ``run_ranked_trial`` returns an interrupted result."""
    stopped = []
    with _lock:
        for (study, number), cancel in _running.items():
            if study == study_name and number in numbers:
                cancel.requested = True
                stopped.append(number)
    return stopped


def run_ranked_trial(
    spec: TrialSpec, ranks: int | None = None, on_epoch: EpochHook | None = None
) -> TrialResult:
    """Run ``spec`` data-parallel on ``ranks`` MPI ranks of this node (default: the
    spec's ``ranks``); never raises."""
    started = time.time()
    ranks = int(getattr(spec, "ranks", 1)) if ranks is None else ranks
    try:
        from supervisor.benchmarks import registry

        cls = registry.load(spec.benchmark_target)
    except Exception as exc:
        return model_failure(spec, started, type(exc).__name__, str(exc))
    if ranks < 1:
        return model_failure(spec, started, "ValueError", f"ranks must be >= 1, got {ranks}")
    if ranks > 1 and not getattr(cls, "supports_ranks", True):
        return model_failure(
            spec,
            started,
            "RanksUnsupported",
            f"benchmark {spec.benchmark!r} does not support ranks > 1 "
            "(it does not train through model.fit)",
        )
    command = find_mpiexec()
    if command is None:
        return model_failure(spec, started, "MpiexecNotFound", "no mpiexec for a multi-rank trial")
    key = (spec.study_name, spec.trial_number)
    cancel = _Cancel()
    with _lock:
        _running[key] = cancel
    # A short path: Unix socket paths are limited to ~107 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="sv-ranks-"))
    try:
        return _launch(spec, ranks, command, workdir, on_epoch, cancel, started)
    except Exception as exc:  # e.g. mpiexec cannot be executed
        return model_failure(spec, started, type(exc).__name__, str(exc))
    finally:
        with _lock:
            _running.pop(key, None)
        shutil.rmtree(workdir, ignore_errors=True)


def _launch(
    spec: TrialSpec,
    ranks: int,
    command: list[str],
    workdir: Path,
    on_epoch: EpochHook | None,
    cancel: _Cancel,
    started: float,
) -> TrialResult:
    (workdir / SPEC_FILE).write_bytes(pickle.dumps((spec, ranks)))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(workdir / SOCKET_FILE))
    listener.listen(1)
    from supervisor.execution.node import child_environment

    # The ranks find the modules this worker finds (a notebook's sys.path included).
    env = {k: v for k, v in child_environment().items() if not k.startswith(_OUTER_MPI)}
    env[PARENT_ENV] = str(os.getpid())
    argv = [*command, "-n", str(ranks), sys.executable, "-m", "mpi4py"]
    argv += ["-m", "supervisor.execution.ranks.run", str(workdir)]
    log_path = workdir / "ranks.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            ended = _serve(proc, listener, on_epoch, spec.time_limit, cancel, started)
        finally:
            _stop(proc)
            listener.close()
    return _collect(spec, ranks, workdir, proc.returncode, ended, log_path, started)


Ended = Literal["exited", "time_limit", "cancelled"]


def _serve(
    proc: subprocess.Popen[bytes],
    listener: socket.socket,
    on_epoch: EpochHook | None,
    time_limit: float | None,
    cancel: _Cancel,
    started: float,
) -> Ended:
    """Relay rank 0's epochs until the job exits, runs out of time or is cancelled."""
    deadline = started + time_limit if time_limit else None
    conn: socket.socket | None = None
    done = False  # rank 0 closed its end
    try:
        while True:
            watched = [] if done else [conn if conn is not None else listener]
            readable, _, _ = select.select(watched, [], [], POLL_SECONDS)
            if readable and conn is None:
                conn, _ = listener.accept()
            elif readable and conn is not None:
                try:
                    message = receive(conn.fileno())
                    stop = on_epoch(message[1], message[2]) if on_epoch is not None else False
                    send(conn.fileno(), ("verdict", bool(stop)))
                except (EOFError, OSError, pickle.UnpicklingError):
                    done = True
            if proc.poll() is not None:
                return "exited"
            if cancel.requested:
                return "cancelled"
            if deadline is not None and time.time() > deadline:
                return "time_limit"
    finally:
        if conn is not None:
            conn.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the job: SIGTERM first (Hydra forwards it and reaps the ranks), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=TERM_GRACE_SECONDS)


def _collect(
    spec: TrialSpec,
    ranks: int,
    workdir: Path,
    returncode: int | None,
    ended: Ended,
    log_path: Path,
    started: float,
) -> TrialResult:
    """One result from the ranks' files: the first failed rank's error, else rank 0's."""
    tail = log_path.read_bytes()[-LOG_TAIL:].decode(errors="replace")
    if ended == "time_limit":
        return model_failure(
            spec,
            started,
            TIME_LIMIT,
            f"trial ran over its time limit of {spec.time_limit:g} s",
        )
    if ended == "cancelled":
        result = model_failure(spec, started, "Interrupted", "stopped by the driver")
        result.failure = "interrupted"
        return result
    results: dict[int, TrialResult] = {}
    for rank in range(ranks):
        path = result_file(workdir, rank)
        with contextlib.suppress(OSError, EOFError, pickle.UnpicklingError):
            results[rank] = pickle.loads(path.read_bytes())
    failed = sorted(r for r, res in results.items() if res.status == "failed")
    if failed:
        result = results[failed[0]]
        result.error = f"rank {failed[0]} of {ranks}: {result.error}"
    elif 0 in results:
        result = results[0]  # trained to the end: a rank dying afterwards changes nothing
    else:
        result = model_failure(
            spec,
            started,
            "TrialProcessDied",
            f"the trial's {ranks} MPI ranks died (mpiexec exit {returncode})",
        )
        result.failure = "infrastructure"  # as a dead trial process: run again
        result.traceback = tail
    result.started, result.finished = started, time.time()
    result.extra["ranks"] = ranks
    if result.status != "failed":
        result.metrics["node_seconds"] = result.metrics.get("node_seconds", 0.0) * ranks
        peaks = [r.metrics.get("peak_memory_mb", 0.0) for r in results.values()]
        result.metrics["peak_memory_mb"] = float(sum(peaks))  # all ranks together
    elif returncode not in (0, None):
        result.extra["ranks_log"] = tail
    return result
