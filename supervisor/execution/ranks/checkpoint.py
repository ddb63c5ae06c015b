"""Epoch checkpoints of a multi-rank trial: one writer, one reading shared by all ranks.

Every rank holds the same weights and optimizer state (gradients are averaged before
each update, ``allreduce``), so rank 0's checkpoint is the trial's: rank 0 alone saves
(K writers would race on one directory), and rank 0 alone reads it and sends what it
read to the others, so all ranks resume from the same epoch even if the files change
under them.
"""

from __future__ import annotations

from typing import Any

from supervisor.benchmarks import Checkpoint, Restored


class SharedCheckpoint(Checkpoint):
    """``inner`` (this rank's checkpoint of the trial) as the ranks of ``comm`` share it."""

    def __init__(self, inner: Checkpoint, comm: Any) -> None:
        super().__init__(inner.directory, inner.every, inner.identity)
        self.inner = inner
        self.comm = comm

    @property
    def resumed_from(self) -> int | None:
        return self.inner.resumed_from

    @resumed_from.setter
    def resumed_from(self, epoch: int | None) -> None:
        # Through to the checkpoint the worker made: it reports the epoch resumed from.
        if hasattr(self, "inner"):
            self.inner.resumed_from = epoch

    def save(self, epoch: int, history: list[dict[str, float]], arrays: dict[str, Any]) -> None:
        if self.comm.rank == 0:
            self.inner.save(epoch, history, arrays)

    def load(self) -> Restored | None:
        restored = self.inner.load() if self.comm.rank == 0 else None
        shared: Restored | None = self.comm.bcast(restored, root=0)
        return shared

    def clear(self) -> None:
        if self.comm.rank == 0:
            self.inner.clear()
