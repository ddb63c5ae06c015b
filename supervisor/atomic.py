"""Files replaced whole: a reader sees the old file or the new one, never half of one.

Every writer gets its own temporary sibling, so two processes writing the same file (two
drivers sharing one study and run directory) never rename each other's temporary away.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def folder(path: Path) -> None:
    """``mkdir -p path``, each folder it creates 0755 at most whatever the umask: under
    umask 000 the runs and reports folders were 0777, where any user can rename a run or
    a report away and put their own in its place. Folders that exist stay as they are."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another driver
            os.mkdir(made, 0o755)  # the umask applies too: 077 keeps it 0700


def _sibling(path: Path) -> Path:
    # Keep the suffix last: writers such as numpy.savez append ".npz" to a name without it.
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def replacing(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path to write; on success it replaces ``path``. With
    ``mode`` (0o600 for a file that may hold a secret) the file gets that mode before
    it appears under its name, whatever mode the library that wrote it chose."""
    folder(path.parent)
    tmp = _sibling(path)
    try:
        if mode is not None:  # made first: a writer that truncates keeps the mode
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)  # in case the writer made a new file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write(path: Path, data: str | bytes, *, mode: int = 0o666, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically. ``mode`` goes through the umask like any file
    the user writes (0o600 for files that may hold a password); ``durable`` fsyncs first."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())
