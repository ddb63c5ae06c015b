"""TensorFlow's start-up notices, kept out of what a command run by the user prints.

``Run.model`` and ``supervisor export --model`` build the model in the calling process,
where TensorFlow first loads (``supervisor rerun``'s trial process writes through it),
and its C++ side printed half a dozen lines of no use to the user: oneDNN is on, the CPU
features it was not built for, no CUDA driver. The workers set ``TF_CPP_MIN_LOG_LEVEL``
(``node.thread_environment``), which silences the lines TensorFlow's own logger prints
(the CPU features). It does not silence the lines logged through absl before TensorFlow
sets absl up (oneDNN, printed once by each of two libraries), and
``TF_ENABLE_ONEDNN_OPTS=0``, which removes that line, changes the numerics. So while
TensorFlow loads, its stderr (file descriptor 2) goes to a temporary file, and
afterwards the file is written back without its informational lines. Warnings, errors
(``W``/``E`` lines), Python warnings and tracebacks are written back as they came. A
user who set ``TF_CPP_MIN_LOG_LEVEL`` sees what that level shows, unfiltered.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# Informational lines: absl's ("I0000 00:00:1796636238.829894 9815 port.cc:153] ...") and
# TensorFlow's ("2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ..."), and
# absl's notice that it has no log set up yet (which only ever precedes such lines here).
NOTICE = re.compile(
    rb"I\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
)


@contextlib.contextmanager
def quiet_framework_start() -> Iterator[None]:
    """Run the block (one that may load TensorFlow) with TensorFlow's informational
    start-up lines left out of stderr; a no-op once TensorFlow is loaded, or when the
    user set ``TF_CPP_MIN_LOG_LEVEL``."""
    if "tensorflow" in sys.modules or LEVEL_ENV in os.environ:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            caught = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no room for the file (a full /tmp), or no stderr: lines as they come
            yield
            return
        os.environ[LEVEL_ENV] = "1"  # INFO off, warnings and errors on: read as TF loads
        _flush()
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.environ.pop(LEVEL_ENV, None)  # the caller's environment, as it was
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(True) if not NOTICE.match(line)]
            with contextlib.suppress(OSError), open(2, "wb", closefd=False) as stderr:
                stderr.write(b"".join(kept))


def _flush() -> None:
    """Python's buffered stderr out first, so that its lines stay in their order."""
    with contextlib.suppress(Exception):
        if sys.stderr is not None:
            sys.stderr.flush()
