"""The plugin contract: what a benchmark implements so that the supervisor can tune it.

A benchmark is a ``Benchmark`` subclass in any importable package, named in a space
file as ``"package.module:Class"`` or registered under a short name through the
``supervisor.benchmarks`` entry-point group. ``benchmarks_sci`` is the first client of
this contract, like any third-party plugin.

Required: ``name``, ``metrics``, ``load_data``, ``build_model``, ``fit``; the rest is
optional (``contract.provides``). ``registry.load`` checks a class against the contract
(``contract.check_class``) before the driver uses it.
"""

from supervisor.benchmarks.base import (
    DIVERGED_AFTER_STEPS,
    Benchmark,
    Dataset,
    Direction,
    EnsembleKind,
    EpochReport,
    MissingMethod,
    Option,
    OptionError,
)
from supervisor.benchmarks.checkpoint import Checkpoint, Restored, checkpoint_of
from supervisor.benchmarks.contract import PluginError, ensemble_problem, provides

__all__ = [
    "DIVERGED_AFTER_STEPS",
    "Benchmark",
    "Checkpoint",
    "Dataset",
    "Direction",
    "EnsembleKind",
    "EpochReport",
    "MissingMethod",
    "Option",
    "OptionError",
    "PluginError",
    "Restored",
    "checkpoint_of",
    "ensemble_problem",
    "provides",
]
