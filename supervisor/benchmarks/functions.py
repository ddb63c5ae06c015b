"""Standard test functions of global optimization as a benchmark: try the supervisor, its
samplers and its clusters in seconds, without a framework or data.

Parameters ``x0 .. x{d-1}`` lie in the unit interval and are mapped onto the function's
usual domain (a missing one stands at 0.5). Each epoch reports the same observation:
``value`` (with Gaussian ``noise`` when asked) and ``regret``, the noise-free distance to
the known global minimum. Formulas and minima as in Surjanovic & Bingham's Virtual
Library of Simulation Experiments (sfu.ca/~ssurjano).

    benchmark: {name: "supervisor.benchmarks.functions:TestFunction",
                options: {function: hartmann6}}
    objectives: [regret]
    params: {x0: {type: float, low: 0, high: 1}, ...}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from supervisor.benchmarks.base import Benchmark, Direction, EpochReport, Option


@dataclass(frozen=True)
class Function:
    """``f`` of points in the domain (rows of an array), its bounds and known minimum.
    ``dims`` is None for a function defined in any dimension."""

    f: Callable[[np.ndarray], np.ndarray]
    low: float | tuple[float, ...]
    high: float | tuple[float, ...]
    minimum: Callable[[int], float]
    dims: int | None = None


def _branin(x: np.ndarray) -> np.ndarray:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return (
        a * (x[:, 1] - b * x[:, 0] ** 2 + c * x[:, 0] - r) ** 2 + s * (1 - t) * np.cos(x[:, 0]) + s
    )


_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)


def _hartmann(a: np.ndarray, p: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A Hartmann function: four wells of weights ``_HARTMANN_ALPHA`` in the unit cube."""

    def f(x: np.ndarray) -> np.ndarray:
        inner = ((x[:, None, :] - p[None]) ** 2 * a[None]).sum(axis=2)
        return -(np.exp(-inner) * _HARTMANN_ALPHA[None]).sum(axis=1)

    return f


def _rosenbrock(x: np.ndarray) -> np.ndarray:
    return (100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(axis=1)


def _ackley(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return (
        -20 * np.exp(-0.2 * np.sqrt((x**2).sum(axis=1) / d))
        - np.exp(np.cos(2 * math.pi * x).sum(axis=1) / d)
        + 20
        + math.e
    )


def _styblinski_tang(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x**4 - 16 * x**2 + 5 * x).sum(axis=1)


def _sphere(x: np.ndarray) -> np.ndarray:
    return (x**2).sum(axis=1)


def _six_hump_camel(x: np.ndarray) -> np.ndarray:
    a, b = x[:, 0], x[:, 1]
    return (4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2


def _levy(x: np.ndarray) -> np.ndarray:
    w = 1 + (x - 1) / 4
    middle = ((w[:, :-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:, :-1] + 1) ** 2)).sum(axis=1)
    last = (w[:, -1] - 1) ** 2 * (1 + np.sin(2 * math.pi * w[:, -1]) ** 2)
    return np.sin(math.pi * w[:, 0]) ** 2 + middle + last


def _rastrigin(x: np.ndarray) -> np.ndarray:
    return 10 * x.shape[1] + (x**2 - 10 * np.cos(2 * math.pi * x)).sum(axis=1)


def _griewank(x: np.ndarray) -> np.ndarray:
    root = np.sqrt(np.arange(1, x.shape[1] + 1))
    return (x**2).sum(axis=1) / 4000 - np.cos(x / root).prod(axis=1) + 1


def _schwefel(x: np.ndarray) -> np.ndarray:
    return 418.9829 * x.shape[1] - (x * np.sin(np.sqrt(np.abs(x)))).sum(axis=1)


def _dixon_price(x: np.ndarray) -> np.ndarray:
    i = np.arange(2, x.shape[1] + 1)
    return (x[:, 0] - 1) ** 2 + (i * (2 * x[:, 1:] ** 2 - x[:, :-1]) ** 2).sum(axis=1)


FUNCTIONS: dict[str, Function] = {
    "branin": Function(_branin, (-5.0, 0.0), (10.0, 15.0), lambda d: 0.397887, dims=2),
    "hartmann6": Function(_hartmann(_H6_A, _H6_P), 0.0, 1.0, lambda d: -3.32237, dims=6),
    "rosenbrock": Function(_rosenbrock, -5.0, 10.0, lambda d: 0.0),
    "ackley": Function(_ackley, -32.768, 32.768, lambda d: 0.0),
    "styblinski_tang": Function(_styblinski_tang, -5.0, 5.0, lambda d: -39.166166 * d),
    "sphere": Function(_sphere, -5.12, 5.12, lambda d: 0.0),
    "hartmann3": Function(_hartmann(_H3_A, _H3_P), 0.0, 1.0, lambda d: -3.86278, dims=3),
    "six_hump_camel": Function(
        _six_hump_camel, (-3.0, -2.0), (3.0, 2.0), lambda d: -1.0316285, dims=2
    ),
    "levy": Function(_levy, -10.0, 10.0, lambda d: 0.0),
    "rastrigin": Function(_rastrigin, -5.12, 5.12, lambda d: 0.0),
    "griewank": Function(_griewank, -600.0, 600.0, lambda d: 0.0),
    "schwefel": Function(_schwefel, -500.0, 500.0, lambda d: 1.2727566e-05 * d),
    "dixon_price": Function(_dixon_price, -10.0, 10.0, lambda d: 0.0),
}


def evaluate(name: str, unit_points: Any) -> np.ndarray:
    """The function ``name`` at points of the unit cube (rows), mapped onto its domain."""
    fn = FUNCTIONS[name]
    points = np.atleast_2d(np.asarray(unit_points, dtype=np.float64))
    low, high = np.asarray(fn.low), np.asarray(fn.high)
    return fn.f(low + points * (high - low))


@dataclass
class Point:
    """The "model" of a trial: the point it stands for, in the unit cube."""

    x: np.ndarray
    seed: int = 0

    def count_params(self) -> int:
        return int(self.x.size)


class TestFunction(Benchmark):
    """A test function of the unit cube; objectives ``value`` or ``regret``."""

    __test__ = False  # not a test class, whatever its name says to pytest

    name: ClassVar[str] = "functions"
    metrics: ClassVar[dict[str, Direction]] = {"value": "minimize", "regret": "minimize"}
    options: ClassVar[dict[str, Option]] = {
        "function": Option("branin", "which function", choices=tuple(FUNCTIONS)),
        "dims": Option(6, "dimensions of a function defined in any (rosenbrock ...)", low=1),
        "noise": Option(0.0, "std of Gaussian noise added to each observation", low=0.0),
        "seconds": Option(0.0, "sleep per epoch, to stand for training time", low=0.0),
    }
    tiny_options: ClassVar[dict[str, Any]] = {"function": "branin"}
    supports_ranks: ClassVar[bool] = False
    checkpoints: ClassVar[bool] = False

    @property
    def dims(self) -> int:
        return FUNCTIONS[self.config["function"]].dims or int(self.config["dims"])

    def load_data(self, seed: int) -> None:
        """Nothing to load: the function is the data."""
        return None

    def build_model(self, params: Mapping[str, Any], seed: int) -> Point:
        coords = [float(params.get(f"x{i}", 0.5)) for i in range(self.dims)]
        if any(not 0.0 <= c <= 1.0 for c in coords):
            raise ValueError(f"parameters x0..x{self.dims - 1} must lie in [0, 1], got {coords}")
        return Point(np.array(coords), seed)

    def fit(
        self,
        model: Point,
        data: Any,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        name = self.config["function"]
        clean = float(evaluate(name, model.x)[0])
        regret = clean - FUNCTIONS[name].minimum(self.dims)
        rng = np.random.default_rng(model.seed)  # the trial's seed: reruns observe the same
        metrics = {"value": clean, "regret": regret}
        for epoch in range(epochs):
            if self.config["seconds"]:
                time.sleep(self.config["seconds"])
            noise = float(rng.normal(0.0, self.config["noise"])) if self.config["noise"] else 0.0
            metrics = {"value": clean + noise, "regret": regret}
            if report(epoch, metrics):
                break
        return metrics

    def predict(self, model: Point, x: Any) -> np.ndarray:
        """The function at the points ``x`` (rows in the unit cube)."""
        return evaluate(self.config["function"], x)
