"""The test-function benchmark: known minima where the literature puts them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from supervisor.benchmarks.functions import FUNCTIONS, TestFunction, evaluate

# Minimizers on each function's own domain.
MINIMIZERS = {
    "branin": [math.pi, 2.275],
    "hartmann6": [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
    "rosenbrock": [1.0] * 4,
    "ackley": [0.0] * 4,
    "styblinski_tang": [-2.903534] * 4,
    "sphere": [0.0] * 4,
    "hartmann3": [0.114614, 0.555649, 0.852547],
    "six_hump_camel": [0.0898, -0.7126],
    "levy": [1.0] * 4,
    "rastrigin": [0.0] * 4,
    "griewank": [0.0] * 4,
    "schwefel": [420.968746] * 4,
    "dixon_price": [2 ** (-(2**i - 2) / 2**i) for i in range(1, 5)],
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_reaches_its_known_minimum_at_its_minimizer(name: str) -> None:
    fn = FUNCTIONS[name]
    x = np.array(MINIMIZERS[name])
    low, high = np.broadcast_to(fn.low, x.shape), np.broadcast_to(fn.high, x.shape)
    unit = (x - low) / (high - low)
    assert evaluate(name, unit)[0] == pytest.approx(fn.minimum(len(x)), abs=1e-4)
    others = np.random.default_rng(0).random((200, len(x)))
    assert (evaluate(name, others) >= fn.minimum(len(x)) - 1e-6).all()


def run(bench: TestFunction, params: dict[str, float], seed: int = 0, epochs: int = 3) -> dict:
    seen: list[int] = []
    model = bench.build_model(params, seed)
    out = bench.fit(model, bench.load_data(0), params, epochs, lambda e, m: bool(seen.append(e)))
    assert seen == list(range(epochs))
    return out


def test_regret_is_the_clean_distance_to_the_minimum_and_noise_follows_the_seed() -> None:
    clean = TestFunction({"function": "hartmann6"})
    params = {f"x{i}": 0.5 for i in range(6)}
    out = run(clean, params)
    assert out["regret"] == pytest.approx(out["value"] + 3.32237)
    noisy = TestFunction({"function": "hartmann6", "noise": 0.1})
    a, b, c = run(noisy, params, 1), run(noisy, params, 1), run(noisy, params, 2)
    assert a == b and a["value"] != c["value"] and a["regret"] == out["regret"]


def test_a_missing_coordinate_stands_at_the_centre_and_one_outside_is_refused() -> None:
    bench = TestFunction({"function": "sphere", "dims": 3})
    assert run(bench, {})["value"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bench.build_model({"x0": 1.5}, 0)


def test_pruning_stops_the_epochs() -> None:
    bench = TestFunction({"function": "branin"})
    seen: list[int] = []
    bench.fit(bench.build_model({}, 0), None, {}, 10, lambda e, m: seen.append(e) or e == 1)
    assert seen == [0, 1]
