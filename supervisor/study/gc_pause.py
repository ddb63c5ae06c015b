"""Python's cyclic garbage collector paused while a study is read in bulk.

Opening a 38,000-trial journal (its snapshot unpickled, or its records replayed) and
reading a record per trial make millions of objects, none of them garbage. Each
allocation counts toward the collector's next pass, and its passes walked those objects
again and again as they aged: half of ``supervisor status``'s 5 s of CPU (the unpickling
alone: 2.7 s with the collector, 1.0 s without). Reference counting still frees what the
pause leaves unused; what is left in cycles waits for the first pass after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection inside. After it, what it made goes straight to the oldest
    generation (``freeze`` then ``unfreeze``: no pass, and collected there as any object
    is): left young, three passes walked it within the next second. A collector paused
    already (by the caller, or another thread) is left paused for whoever paused it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
