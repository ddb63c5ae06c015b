"""The pipe protocol between a worker and its trial processes: length-prefixed pickles.

Used by the trial host (``("trial", spec)``, ``("epoch", n, metrics)``, ``("verdict",
stop)``, ``("result", result)``) and by the ranks of a multi-rank trial.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

_HEADER = struct.Struct(">Q")


def send(fd: int, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int) -> tuple[Any, ...]:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    message: tuple[Any, ...] = pickle.loads(_read_exactly(fd, size))
    return message


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end of the pipe closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
