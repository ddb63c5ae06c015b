"""The plugin contract: what a benchmark implements so that the supervisor can tune it.

A benchmark is a ``Benchmark`` subclass in any importable package, named in a space
file as ``"package.module:Class"`` or registered under a short name through the
``supervisor.benchmarks`` entry-point group. ``benchmarks_sci`` is the first client of
this contract, like any third-party plugin.
"""

from supervisor.benchmarks.base import (
    Benchmark,
    Dataset,
    Direction,
    EnsembleKind,
    EpochReport,
    Option,
    OptionError,
)
from supervisor.benchmarks.checkpoint import Checkpoint, Restored, checkpoint_of

__all__ = [
    "Benchmark",
    "Checkpoint",
    "Dataset",
    "Direction",
    "EnsembleKind",
    "EpochReport",
    "Option",
    "OptionError",
    "Restored",
    "checkpoint_of",
]
