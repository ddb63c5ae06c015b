"""Only attributes."""

from __future__ import annotations

from supervisor.benchmarks import Benchmark


class Bench(Benchmark):
    name = "empty"
    metrics = {"loss": "minimize"}
