"""A complete plugin with only what the contract requires; the cases break one thing."""

from __future__ import annotations

from typing import Any

from supervisor.benchmarks import Benchmark


class Minimal(Benchmark):
    name = "minimal"
    metrics = {"loss": "minimize"}

    def load_data(self, seed: int) -> Any:
        return None

    def build_model(self, params: Any, seed: int) -> Any:
        return dict(params)

    def fit(self, model: Any, data: Any, params: Any, epochs: int, report: Any) -> dict:
        return {"loss": float(params.get("x", 0.0)) ** 2}
