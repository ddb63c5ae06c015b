"""Moved to ``supervisor.benchmarks`` (the plugin contract lives in the core package).

Kept for one release so that plugins written against ``benchmarks_sci.base`` still import.
"""

from supervisor.benchmarks import (
    Benchmark,
    Checkpoint,
    Direction,
    EnsembleKind,
    EpochReport,
    Option,
    OptionError,
    Restored,
    checkpoint_of,
)

__all__ = [
    "Benchmark",
    "Checkpoint",
    "Direction",
    "EnsembleKind",
    "EpochReport",
    "Option",
    "OptionError",
    "Restored",
    "checkpoint_of",
]
