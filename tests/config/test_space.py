"""Search-space files: good ones resolve fully, bad ones give one located message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from supervisor.config import space
from supervisor.errors import SpaceError, UserError

TOY = "tests.toy_benchmark:ToyBenchmark"

GOOD = f"""\
study: demo-1
benchmark:
  name: "{TOY}"
  options: {{delay: 0.0}}
objectives:
  - metric: loss
  - {{metric: train_seconds, direction: minimize}}
params:
  lr: {{type: float, low: 1.0e-4, high: 1.0e-1, log: true}}
  units: {{type: int, low: 8, high: 64, step: 8}}
  opt: {{type: categorical, choices: [adam, sgd]}}
  momentum: {{type: float, low: 0.0, high: 0.9, when: {{opt: sgd}}}}
  nesterov: {{type: categorical, choices: [true, false], when: {{opt: sgd}}}}
fixed:
  batch_size: 64
sampler: {{name: nsgaii, options: {{population_size: 10}}}}
budget: {{trials: 12, epochs: 3, timeout: 1h30m}}
seed: 5
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_resolves_everything(tmp_path: Path) -> None:
    exp = space.load(write(tmp_path, GOOD))
    assert exp.study_name == "demo-1"
    assert exp.benchmark_target == TOY
    assert exp.options == {"delay": 0.0, "offset": 2.0}
    assert [(o.metric, o.direction) for o in exp.objectives] == [
        ("loss", "minimize"),
        ("train_seconds", "minimize"),
    ]
    by_name = {p.name: p for p in exp.params}
    assert by_name["lr"].log and by_name["lr"].low == 1e-4
    assert by_name["units"].step == 8
    assert by_name["momentum"].when == {"opt": ("sgd",)}
    assert exp.fixed == {"batch_size": 64}
    assert exp.sampler == "nsgaii" and exp.sampler_options == {"population_size": 10}
    assert exp.budget.timeout == 5400 and exp.budget.trials == 12 and exp.budget.epochs == 3
    assert exp.budget.trial_timeout is None  # no per-trial limit unless asked
    assert exp.budget.checkpoint_every == 1  # epoch checkpoints unless turned off
    assert exp.seed == 5


def test_children_come_after_their_parents(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        benchmark: "{TOY}"
        params:
          child: {{type: float, low: 0, high: 1, when: {{parent: b}}}}
          parent: [a, b]
        budget: {{trials: 1}}
        """,
    )
    exp = space.load(path)
    assert [p.name for p in exp.params] == ["parent", "child"]
    assert exp.study_name == "space"  # from the file name


def test_conditional_params_are_sampled_only_when_active(tmp_path: Path) -> None:
    import optuna

    from supervisor.config.params import suggest

    exp = space.load(write(tmp_path, GOOD))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_opts = set()
    for _ in range(30):
        trial = study.ask()
        values = suggest(trial, exp.params)
        seen_opts.add(values["opt"])
        assert ("momentum" in values) == (values["opt"] == "sgd")
        assert ("nesterov" in values) == (values["opt"] == "sgd")
        assert values["units"] % 8 == 0 and 1e-4 <= values["lr"] <= 1e-1
        study.tell(trial, 0.0)
    assert seen_opts == {"adam", "sgd"}


def test_weather_example_file_is_valid() -> None:
    exp = space.load(Path(__file__).parents[2] / "search_spaces" / "weather.yaml")
    assert exp.benchmark == "weather"
    assert exp.objectives[0].metric == "val_accuracy"


EXAMPLES = sorted((Path(__file__).parents[2] / "search_spaces").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_file_is_valid(path: Path) -> None:
    exp = space.load(path)
    assert exp.budget.trials >= 1 and exp.objectives
    if path.stem.endswith("-pareto"):  # accuracy against a cost the supervisor measures
        assert len(exp.objectives) == 2 and exp.objectives[1].metric in space.COST_METRICS
        assert exp.objectives[0].metric not in space.COST_METRICS


def test_there_is_a_pareto_example_per_benchmark() -> None:
    benchmarks = {space.load(p).benchmark for p in EXAMPLES}
    pareto = {space.load(p).benchmark for p in EXAMPLES if p.stem.endswith("-pareto")}
    assert pareto == benchmarks == {"weather", "nanopore", "cosmogan", "speech"}


BAD = [
    # (fragment replacing part of GOOD or a whole file, expected key path, expected words)
    (
        "benchmark: {name: weathr}\nparams: {}\nbudget: {trials: 1}\n",
        "benchmark.name",
        'did you mean "weather"',
    ),
    (GOOD.replace("budget:", "budjet:"), "budjet", 'did you mean "budget"'),
    (
        GOOD.replace("low: 1.0e-4, high: 1.0e-1", "low: 1.0, high: 0.1"),
        "params.lr.low",
        "less than high",
    ),
    (GOOD.replace("choices: [adam, sgd]", "choices: []"), "params.opt.choices", "non-empty"),
    (GOOD.replace("{opt: sgd}}", "{opt: sgdd}}", 1), "params.momentum.when.opt", "not one of"),
    (GOOD.replace("nsgaii", "nsga9"), "sampler.name", "unknown sampler"),
    (
        GOOD.replace("population_size", "populaton_size"),
        "sampler.options.populaton_size",
        'did you mean "population_size"',
    ),
    (GOOD.replace("trials: 12", "trials: twelve"), "budget.trials", "expected an integer"),
    (GOOD.replace("trials: 12", "trials: 0"), "budget.trials", "between 1"),
    (GOOD.replace("timeout: 1h30m", "timeout: soon"), "budget.timeout", "duration"),
    (
        GOOD.replace("timeout: 1h30m", "timeout: 1h30m, trial_timeout: -5"),
        "budget.trial_timeout",
        "positive duration",
    ),
    (
        GOOD.replace("timeout: 1h30m", "timeout: 1h30m, checkpoint_every: -1"),
        "budget.checkpoint_every",
        "between 0",
    ),
    (
        GOOD.replace("timeout: 1h30m", "timeout: 1h30m, checkpoint_every: often"),
        "budget.checkpoint_every",
        "expected an integer",
    ),
    (GOOD.replace("metric: loss", "metric: los"), "objectives[0].metric", 'did you mean "loss"'),
    (GOOD.replace("type: int", "type: integer"), "params.units.type", 'did you mean "int"'),
    (GOOD.replace("low: 8, high: 64", "low: 8.5, high: 64"), "params.units.low", "integer"),
    (GOOD.replace("step: 8", "step: 5"), "params.units.step", "multiple of step"),
    (GOOD.replace("log: true", "log: yes please"), "params.lr.log", "true or false"),
    (GOOD.replace("low: 1.0e-4", "low: -1.0"), "params.lr.low", "log-scale"),
    (
        GOOD.replace("options: {delay: 0.0}", "options: {dealy: 0.0}"),
        "benchmark.options.dealy",
        'did you mean "delay"',
    ),
    (
        GOOD.replace("options: {delay: 0.0}", "options: {delay: fast}"),
        "benchmark.options.delay",
        "expected float",
    ),
    (GOOD.replace("batch_size: 64", "lr: 0.1"), "fixed.lr", "also a searched parameter"),
    (GOOD.replace("study: demo-1", "study: ../../etc"), "study", "letters, digits"),
    (GOOD.replace("seed: 5", "seed: -5"), "seed", "between 0"),
    (GOOD + "seed: 6\n", "seed", "duplicate key"),
    (GOOD.replace("low: 8, high: 64", "low: 8, high: 1.0e+400"), "params.units.high", "finite"),
    (GOOD.replace("low: 1.0e-4", "low: 1e-4"), "params.lr.low", "write exponents with a dot"),
    (GOOD + "retrain_duplicates: sometimes\n", "retrain_duplicates", "true or false"),
    (GOOD + "pruner: median\n", "pruner.name", "single objective"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD)
def test_bad_files_name_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        space.load(path)
    err = info.value
    assert err.key == key, str(err)
    assert words in str(err)
    message = str(err)
    assert message.startswith(str(path))
    assert "\n" not in message
    assert err.line is not None  # every one of these has a place in the file


def test_cycles_in_conditions_are_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        benchmark: "{TOY}"
        params:
          a: {{type: categorical, choices: [x, y], when: {{b: 1}}}}
          b: {{type: int, low: 0, high: 3, when: {{a: x}}}}
        budget: {{trials: 1}}
        """,
    )
    with pytest.raises(SpaceError, match="cycle: a -> b -> a"):
        space.load(path)


def test_yaml_problems_point_at_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "benchmark: toy\nparams:\n\tx: 1\n")
    with pytest.raises(SpaceError) as info:
        space.load(path)
    assert info.value.line == 3 and "tabs" in str(info.value)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SpaceError, match="alias bomb"):
        space.load(path)


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("benchmark: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpaceError, match="not UTF-8"):
        space.load(path)
    with pytest.raises(SpaceError, match="no such file"):
        space.load(tmp_path / "missing.yaml")


def test_grid_sampler_needs_finite_params(tmp_path: Path) -> None:
    text = GOOD.replace("sampler: {name: nsgaii, options: {population_size: 10}}", "sampler: grid")
    text = text.replace("  - {metric: train_seconds, direction: minimize}\n", "")
    with pytest.raises(SpaceError, match="grid search needs a finite parameter"):
        space.load(write(tmp_path, text))


# -- issue 17: what validated and then crashed, recursed or silently changed -------------


def chain(n: int, cycle: bool = False) -> str:
    """``n`` categorical parameters, each active only when the previous one is 'a',
    declared children first (the order that recursion would walk deepest)."""
    lines = [f'benchmark: "{TOY}"', "budget: {trials: 1}", "params:"]
    for i in range(n - 1, 0, -1):
        lines.append(f"  p{i}: {{choices: [a, b], when: {{p{i - 1}: a}}}}")
    lines.append(f"  p0: {{choices: [a, b], when: {{p{n - 1}: a}}}}" if cycle else "  p0: [a, b]")
    return "\n".join(lines) + "\n"


def test_a_chain_of_1500_conditions_loads_parents_first(tmp_path: Path) -> None:
    exp = space.load(write(tmp_path, chain(1500)))
    assert [p.name for p in exp.params] == [f"p{i}" for i in range(1500)]


def test_a_cycle_through_1500_conditions_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpaceError) as err:
        space.load(write(tmp_path, chain(1500, cycle=True)))
    message = str(err.value)
    assert (
        "params.p1499.when: conditions form a cycle through 1500 parameters: p1499 ->" in message
    )
    assert "\n" not in message and len(message) < 300


def test_conditions_on_an_int_parent_take_its_values(tmp_path: Path) -> None:
    text = f"""\
        benchmark: "{TOY}"
        budget: {{trials: 1}}
        params:
          layers: {{type: int, low: 1, high: 7, step: 2}}
          width: {{type: int, low: 8, high: 64, when: {{layers: [3, 7]}}}}
        """
    exp = space.load(write(tmp_path, text))
    assert exp.params[1].when == {"layers": (3, 7)}


def test_yaml_booleans_are_booleans_unless_they_sit_among_text(tmp_path: Path) -> None:
    """`[yes, no]` is a choice between two booleans; `[NO, SE, DK]` is refused (a file
    reads the same in every YAML tool: the fix is to quote, not a private YAML dialect)."""
    text = f'benchmark: "{TOY}"\nbudget: {{trials: 1}}\nparams:\n  flag: [yes, no]\n'
    assert space.load(write(tmp_path, text)).params[0].choices == (True, False)
    quoted = text.replace("[yes, no]", "['NO', SE, DK]")
    assert space.load(write(tmp_path, quoted)).params[0].choices == ("NO", "SE", "DK")


def test_a_study_written_in_the_file_is_never_replaced(tmp_path: Path) -> None:
    body = f'benchmark: "{TOY}"\nparams:\n  x: [1, 2]\nbudget: {{trials: 1}}\n'
    assert space.load(write(tmp_path, body, "from-the-name.yaml")).study_name == "from-the-name"
    for value in ('""', "0", "false", "null"):
        with pytest.raises(SpaceError, match="study: expected a name"):
            space.load(write(tmp_path, f"study: {value}\n{body}", "fine.yaml"))
    with pytest.raises(SpaceError, match="the file name 'bad name' is no study name"):
        space.load(write(tmp_path, body, "bad name.yaml"))
    with pytest.raises(UserError, match="--study ''"):
        space.load(write(tmp_path, body), study_name="")


def test_grid_search_up_to_the_limit_is_accepted(tmp_path: Path) -> None:
    text = f"""\
        benchmark: "{TOY}"
        budget: {{trials: 1}}
        sampler: grid
        params:
          a: {{type: int, low: 1, high: 1000}}
          b: {{type: int, low: 1, high: 1000}}
        """
    assert space.load(write(tmp_path, text)).sampler == "grid"  # 10**6 points
    with pytest.raises(SpaceError, match="the grid has more than 1,000,000 points"):
        space.load(write(tmp_path, text.replace("high: 1000}\n", "high: 1001}\n", 1)))
