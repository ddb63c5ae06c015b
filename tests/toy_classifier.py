"""A TensorFlow-free classifier for ensemble tests: softmax regression in numpy.

Three overlapping Gaussian classes in 4-D. Each trial fits by full-batch gradient descent
on a bootstrap sample of the training set drawn with its seed, so members of one
configuration differ (bagging) and an ensemble has something to average. ``lr`` and
``l2`` are its hyper-parameters; ``mode: raise`` makes the trial fail.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option

CLASSES = 3
FEATURES = 4


@dataclass
class ToyData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class SoftmaxModel:
    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.w = self.rng.normal(0.0, 0.5, (FEATURES + 1, CLASSES))
        self.lr = float(params.get("lr", 0.5))
        self.l2 = float(params.get("l2", 1e-3))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = np.c_[x, np.ones(len(x))] @ self.w
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def count_params(self) -> int:
        return int(self.w.size)

    def get_weights(self) -> list[np.ndarray]:  # as a Keras model has: keep_models saves it
        return [self.w.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        (w,) = weights
        if w.shape != self.w.shape:
            raise ValueError(f"expected weights of shape {self.w.shape}, got {w.shape}")
        self.w = np.array(w)


class ToyClassifier(Benchmark):
    name = "toy-classifier"
    ensemble_kind = "classification"
    metrics: ClassVar[dict[str, Direction]] = {"val_nll": "minimize", "val_accuracy": "maximize"}
    options: ClassVar[dict[str, Option]] = {
        "n": Option(300, "samples per split", low=10),
        "spread": Option(1.3, "class overlap: standard deviation around each class mean"),
        "delay": Option(0.0, "seconds each fit sleeps (a member still training)", low=0.0),
    }

    def load_data(self, seed: int) -> ToyData:
        rng = np.random.default_rng(seed)
        means = rng.normal(0.0, 1.0, (CLASSES, FEATURES))
        parts = []
        for _ in range(3):
            y = rng.integers(0, CLASSES, self.config["n"])
            x = means[y] + rng.normal(0.0, self.config["spread"], (len(y), FEATURES))
            parts += [x, y]
        return ToyData(*parts)

    def build_model(self, params: Mapping[str, Any], seed: int) -> SoftmaxModel:
        return SoftmaxModel(params, seed)

    def fit(
        self,
        model: SoftmaxModel,
        data: ToyData,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        if params.get("mode") == "raise":
            raise RuntimeError("member exploded on purpose")
        time.sleep(self.config["delay"])
        pick = model.rng.integers(0, len(data.y_train), len(data.y_train))  # bootstrap
        x, y = np.c_[data.x_train[pick], np.ones(len(pick))], data.y_train[pick]
        onehot = np.eye(CLASSES)[y]
        scores: dict[str, float] = {}
        for epoch in range(epochs):
            for _ in range(20):
                p = model.probabilities(x[:, :-1])
                grad = x.T @ (p - onehot) / len(y) + model.l2 * model.w
                model.w -= model.lr * grad
            scores = self._scores(model, data.x_val, data.y_val)
            if report(epoch, scores):
                break
        return scores

    def _scores(self, model: SoftmaxModel, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        p = model.probabilities(x)
        nll = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))
        return {"val_nll": nll, "val_accuracy": float(np.mean(p.argmax(axis=1) == y))}

    def predict(self, model: SoftmaxModel, x: Any) -> np.ndarray:
        return model.probabilities(np.asarray(x))

    def count_params(self, model: Any) -> int:
        return int(model.count_params())

    def save_data(self, data: Any, path: Path) -> None:
        np.savez(path, **vars(data))
