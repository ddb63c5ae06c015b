"""No fit."""

from __future__ import annotations

from typing import Any

from supervisor.benchmarks import Benchmark


class Bench(Benchmark):
    name = "nofit"
    metrics = {"loss": "minimize"}

    def load_data(self, seed: int) -> Any:
        return None

    def build_model(self, params: Any, seed: int) -> Any:
        return None
