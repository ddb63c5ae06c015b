"""A TensorFlow-free benchmark for driver and CLI tests: a noisy quadratic 'model'.

Parameters steer its behaviour so tests can provoke every outcome: ``x`` sets the loss,
``mode`` = "raise" | "nan" | "inf" | "neginf" | "sleep" | "exit" | "segfault" | "hog" |
"leak" makes the trial fail in that way (or take long, hold ``mb`` MiB of memory, or leak
them); "nan" diverges after finite epochs, "diverge" within its first epoch after finite steps (as
``benchmarks_sci.keras_fit`` reports it), "nan_inputs" is NaN from the first step on.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from supervisor.benchmarks import DIVERGED_AFTER_STEPS, Benchmark, Direction, EpochReport, Option

LEAKED: list[np.ndarray] = []


class ToyModel:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def count_params(self) -> int:
        return len(self.params)


class ToyBenchmark(Benchmark):
    name = "toy"
    metrics: ClassVar[dict[str, Direction]] = {"loss": "minimize", "score": "maximize"}
    options: ClassVar[dict[str, Option]] = {
        "delay": Option(0.0, "seconds each epoch sleeps", low=0.0),
        "offset": Option(2.0, "where the minimum of the loss lies"),
    }

    def load_data(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, "pid": os.getpid()}

    def build_model(self, params: Mapping[str, Any], seed: int) -> ToyModel:
        return ToyModel(params)

    def fit(
        self,
        model: Any,
        data: Any,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        mode = params.get("mode", "ok")
        x = float(params.get("x", 0.0))
        loss = (x - self.config["offset"]) ** 2
        for epoch in range(epochs):
            if self.config["delay"]:
                time.sleep(self.config["delay"])
            if mode == "sleep":
                time.sleep(float(params.get("seconds", 5.0)))
            if mode == "exit":
                os._exit(13)  # the worker process dies mid-trial
            if mode == "segfault":  # a native library's crash, after its own last words
                print("native kernel: bad descriptor 0x0", file=sys.stderr, flush=True)
                import ctypes

                ctypes.string_at(0)
            if mode == "leak":  # keeps ``mb`` MiB for good, as TF does per traced model
                LEAKED.append(np.ones(int(params.get("mb", 100)) * 2**17))
            if mode == "hog":  # holds memory: ``mb`` MiB, touched so that it is resident
                hog = np.ones(int(params.get("mb", 100)) * 2**17)
                time.sleep(float(params.get("seconds", 5.0)))
                del hog
            if mode == "diverge":  # the learning rate too high: NaN after 3 finite steps
                report(epoch, {"loss": float("nan"), "score": 0.0, DIVERGED_AFTER_STEPS: 3.0})
                return {"loss": float("nan"), "score": 0.0}
            if mode == "nan_inputs":
                loss = float("nan")
            if report(epoch, {"loss": loss + 1.0 / (epoch + 1), "score": -loss}):
                break
        if mode == "raise":
            raise RuntimeError("model exploded on purpose")
        if mode in ("nan", "nan_inputs"):
            return {"loss": float("nan"), "score": 0.0}
        if mode == "inf":
            return {"loss": float("inf"), "score": 0.0}
        if mode == "neginf":  # as good as it gets for a minimised loss: Optuna would keep it
            return {"loss": float("-inf"), "score": float("inf")}
        return {"loss": loss, "score": -loss}

    def predict(self, model: Any, x: Any) -> Any:
        return x

    def save_data(self, data: Any, path: Path) -> None:
        path.write_text(json.dumps(data))

    def artifacts(self, model: Any, data: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        if not params.get("artifacts"):
            return {}
        return {"curve": np.linspace(0.0, float(params.get("x", 0.0)), 5)}
