"""Benchmark names -> "module:attr" strings, resolved lazily.

The driver and the CLI look benchmarks up here without importing TensorFlow: a
benchmark module imports only numpy at the top. Third-party packages add benchmarks
through the ``supervisor.benchmarks`` entry-point group.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from supervisor.errors import UserError, did_you_mean

if TYPE_CHECKING:
    from supervisor.benchmarks.base import Benchmark

BUILTIN: dict[str, str] = {
    "weather": "benchmarks_sci.weather:WeatherBenchmark",
    "cosmogan": "benchmarks_sci.cosmogan:CosmoGANBenchmark",
    "speech": "benchmarks_sci.speech:SpeechBenchmark",
    "nanopore": "benchmarks_sci.nanopore:NanoporeBenchmark",
}

ENTRY_POINT_GROUP = "supervisor.benchmarks"


@cache
def benchmarks() -> dict[str, str]:
    """Every known benchmark name and its target; entry points may add to the built-ins."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def target(name: str) -> str:
    """The "module:attr" of a registered name; a "module:attr" itself is accepted as is."""
    if ":" in name:
        return name
    known = benchmarks()
    if name not in known:
        names = ", ".join(sorted(known))
        raise UserError(f"unknown benchmark {name!r}{did_you_mean(name, known)}; known: {names}")
    return known[name]


def load(target_or_name: str) -> type[Benchmark]:
    """Import the Benchmark class behind a name or a "module:attr" string."""
    spec = target_or_name if ":" in target_or_name else target(target_or_name)
    module_name, _, attr = spec.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]
