"""One rank of a multi-rank trial (started by ``supervisor.execution.ranks.launch``):

    mpiexec -n K python -m mpi4py -m supervisor.execution.ranks.run WORKDIR

Every rank runs the worker's ordinary ``execute`` on the spec in ``WORKDIR`` with the
benchmark class made data-parallel (``ranked``): same data, same seed, the model
wrapped by ``allreduce.data_parallel`` before ``fit``. Rank 0 streams the epochs to
the launcher over a Unix socket in ``WORKDIR`` (and relays its pruning verdict to the
other ranks) and alone writes artifacts and epoch checkpoints (``checkpoint``: every
rank resumes from the one rank 0 read). Each rank writes its ``TrialResult`` to
``rank-<r>.pkl``; a rank whose trial failed then aborts the whole job (``MPI_Abort``),
since the others may be waiting for it in a collective. ``-m mpi4py`` aborts likewise
on an uncaught exception, and every rank dies with the launcher.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.atomic as atomic
from supervisor.execution.trial import TrialResult, TrialSpec
from supervisor.execution.wire import receive, send

if TYPE_CHECKING:
    from supervisor.benchmarks import Benchmark, EpochReport

SPEC_FILE = "spec.pkl"  # pickle of (TrialSpec, ranks)
SOCKET_FILE = "epochs.sock"
PARENT_ENV = "SUPERVISOR_RANKS_PARENT"  # pid of the launcher: ranks die with it

# The data-parallel benchmark class of this process's trial, set by ``main`` and
# resolved by ``execute`` through the spec's target ``<this module>:RankedBenchmark``.
RankedBenchmark: type[Benchmark] | None = None


def result_file(workdir: Path, rank: int) -> Path:
    return workdir / f"rank-{rank}.pkl"


def ranked(cls: type[Benchmark], comm: Any) -> type[Benchmark]:
    """``cls`` with its model trained data-parallel over ``comm`` and the stop verdict
    of rank 0 shared by every rank."""
    from supervisor.execution.ranks.allreduce import (
        RanksUnsupported,
        check_trained_by_fit,
        data_parallel,
    )

    class Ranked(cls):  # type: ignore[valid-type, misc]
        def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
            if comm.size > 1 and not getattr(cls, "supports_ranks", True):
                raise RanksUnsupported(f"benchmark {cls.name!r} does not support ranks > 1")
            return data_parallel(super().build_model(params, seed), comm, seed)

        def fit(
            self,
            model: Any,
            data: Any,
            params: Mapping[str, Any],
            epochs: int,
            report: EpochReport,
        ) -> dict[str, float]:
            from supervisor.benchmarks import checkpoint_of
            from supervisor.execution.ranks.checkpoint import SharedCheckpoint

            def agreed(epoch: int, metrics: dict[str, float]) -> bool:
                stop = report(epoch, metrics)  # only rank 0 hears the driver
                return bool(comm.bcast(stop, root=0))

            ckpt = checkpoint_of(report)
            shared = None if ckpt is None else SharedCheckpoint(ckpt, comm)
            agreed.checkpoint = shared  # type: ignore[attr-defined]
            metrics: dict[str, float] = super().fit(model, data, params, epochs, agreed)
            check_trained_by_fit(model, comm.size)
            return metrics

    Ranked.__name__ = Ranked.__qualname__ = f"Ranked{cls.__name__}"
    return Ranked


def _epoch_channel(path: Path) -> Callable[[int, dict[str, float]], bool]:
    """Rank 0's hook: each epoch goes to the launcher, which answers with the verdict."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    fd = sock.fileno()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        send(fd, ("epoch", epoch, metrics))
        return bool(receive(fd)[1])

    on_epoch.sock = sock  # type: ignore[attr-defined]  # kept open as long as the hook
    return on_epoch


def _die_with_launcher() -> None:
    """No rank outlives the launcher: PR_SET_PDEATHSIG for our parent (MPI's proxy)
    and a watcher of the launcher's pid (a Dask worker killed with -9)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    pid = int(os.environ.get(PARENT_ENV, "0") or 0)
    if pid <= 0:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def _write(workdir: Path, rank: int, result: TrialResult) -> None:
    path = result_file(workdir, rank)
    atomic.write(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def main(argv: list[str] | None = None) -> None:
    global RankedBenchmark
    workdir = Path((sys.argv[1:] if argv is None else argv)[0])
    _die_with_launcher()
    from mpi4py import MPI

    from supervisor.benchmarks import registry
    from supervisor.execution.execute import execute

    comm = MPI.COMM_WORLD
    spec: TrialSpec | None = None
    try:
        spec, ranks = pickle.loads((workdir / SPEC_FILE).read_bytes())
        if comm.size != ranks:
            raise RuntimeError(f"started on {comm.size} MPI ranks, the trial asked for {ranks}")
        RankedBenchmark = ranked(registry.load(spec.benchmark_target), comm)
        on_epoch = _epoch_channel(workdir / SOCKET_FILE) if comm.rank == 0 else None
        rank_spec = replace(
            spec,
            benchmark_target=f"{__name__}:RankedBenchmark",
            isolation="inline",
            run_dir=spec.run_dir if comm.rank == 0 else None,  # one writer of artifacts
        )
        result = execute(rank_spec, on_epoch)
    except Exception as exc:  # outside execute (which never raises): the set-up
        result = TrialResult(
            trial_number=spec.trial_number if spec is not None else -1,
            status="failed",
            failure="model",
            error_type=type(exc).__name__,
            error=str(exc)[:2000] or type(exc).__name__,
            traceback=traceback.format_exc()[-8000:],
        )
    result.extra["rank"] = comm.rank
    if "keras" in sys.modules:
        result.extra["keras_backend"] = sys.modules["keras"].backend.backend()
    _write(workdir, comm.rank, result)
    if result.status == "failed":
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Abort(1)  # the others may wait for this rank in a collective: end them


if __name__ == "__main__":
    main()
