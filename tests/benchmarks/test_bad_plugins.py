"""A corpus of broken plugins, through the real ``supervisor validate`` and ``search``.

``tests/bad_inputs/plugin/`` holds small plugin modules (``plug_*.py``; each breaks the
contract of ``supervisor.benchmarks`` in one way, or is a valid plugin that lacks an
optional method) and a space file per case naming one (or naming something that is no
plugin at all: ``":X"``, ``"json:dumps"``, a module that does not exist). Each case runs
in a directory of its own holding the modules, the space file and a good earlier
campaign (``runs/``, ``reports/``); ``validate``, ``search --dry-run`` and ``search``
must each print one line on stderr naming the file, its line:column and the key, exit
with code 2, print no traceback, and leave every file byte-identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.config.cli_runner import Outcome, run_cases, snapshot

CORPUS = Path(__file__).parents[1] / "bad_inputs" / "plugin"
COMMANDS = {
    "validate": ["validate"],
    "dry-run": ["search", "--dry-run"],
    "search": ["search", "--plain", "--dashboard", ":0"],
}
# Written here, not kept in git: a module that does not parse would fail the linter.
GENERATED = {"plug_syntax_error.py": "class Bench(:\n    pass\n"}
# An earlier campaign a refused command must leave alone.
GOOD_RUN = {
    "runs/good/run.json": '{"study": "good", "storage": "journal:runs/good/journal.log"}\n',
    "runs/good/journal.log": "{}\n",
    "reports/good.html": "<html>good</html>\n",
}
NOT_A_CLASS = "not a Benchmark class"

# space file -> (line:column of the message, a fragment of what it must say)
EXPECTED: dict[str, tuple[str, str]] = {
    "build_model_wrong_signature.yaml": (
        "1:1",
        "benchmark.name: plug_build_model_wrong_signature:Bench: build_model() must take"
        " (params, seed)",
    ),
    "default_options_old_name.yaml": ("1:1", "has 'default_options'; the attribute is 'options'"),
    "ensemble_kind_unknown.yaml": (
        "1:1",
        "'ensemble_kind' must be None or one of classification, sequence, generative,"
        " regression, got 'vote'",
    ),
    "ensemble_without_predict.yaml": (
        "5:1",
        "ensemble: benchmark 'minimal' has no predict() method, which ensembles need",
    ),
    "exits_on_import.yaml": (
        "1:1",
        "plug_exits_on_import:Bench: cannot load benchmark: importing plug_exits_on_import"
        " raised SystemExit: no licence",
    ),
    "fit_not_callable.yaml": ("1:1", "plug_fit_not_callable:Bench: fit must be a method, got"),
    "fit_wrong_signature.yaml": (
        "1:1",
        "fit() must take (model, data, params, epochs, report), but its signature is",
    ),
    "function_not_class.yaml": (
        "1:1",
        f"benchmark.name: plug_function_not_class:make: {NOT_A_CLASS} (a function)",
    ),
    "getattr_raises.yaml": (
        "1:1",
        "plug_getattr_raises:Bench: cannot load benchmark: reading Bench raised RuntimeError:"
        " lazy import of Bench failed",
    ),
    "init_wrong_signature.yaml": ("1:1", "__init__() must take (options)"),
    "instance_not_class.yaml": (
        "1:1",
        f"plug_instance_not_class:BENCH: {NOT_A_CLASS} (an instance of Minimal)",
    ),
    "latency_without_predict.yaml": (
        "5:20",
        "objectives[1].metric: latency_ms is measured with predict(), which benchmark"
        " 'plug_no_predict:Bench' does not implement",
    ),
    "metric_is_a_cost_metric.yaml": (
        "1:1",
        "returns the metric 'train_seconds', which the supervisor measures itself",
    ),
    "metric_not_in_plugin.yaml": ("5:14", "objectives[0].metric: benchmark 'plug_base:Minimal'"),
    "metrics_a_list.yaml": (
        "1:1",
        "'metrics' must be a non-empty mapping of metric -> minimize/maximize, got ['loss']",
    ),
    "metrics_bad_direction.yaml": (
        "1:1",
        "metrics.loss: expected minimize or maximize, got 'lower'",
    ),
    "metrics_empty.yaml": ("1:1", "'metrics' must be a non-empty mapping"),
    "metrics_name_not_text.yaml": ("1:1", "'metrics' names must be non-empty strings, got 1"),
    "missing_build_model.yaml": (
        "1:1",
        "plug_missing_build_model:Bench: does not implement build_model (required: load_data,"
        " build_model, fit)",
    ),
    "missing_dependency.yaml": (
        "1:1",
        "plug_missing_dependency:Bench: cannot load benchmark: No module named"
        " 'nowhere_to_be_found'",
    ),
    "missing_every_method.yaml": ("1:1", "does not implement load_data, build_model, fit"),
    "missing_fit.yaml": ("1:1", "plug_missing_fit:Bench: does not implement fit"),
    "missing_load_data.yaml": (
        "1:1",
        "plug_missing_load_data:Bench: does not implement load_data",
    ),
    "missing_metrics.yaml": ("1:1", "'metrics' must be a non-empty mapping"),
    "missing_name.yaml": ("1:1", "'name' must be a non-empty string of at most 128 characters"),
    "module_missing.yaml": (
        "1:1",
        "benchmark.name: plug_nowhere:Bench: cannot load benchmark: No module named"
        " 'plug_nowhere'",
    ),
    "name_a_module.yaml": ("1:1", f"benchmark.name: os:path: {NOT_A_CLASS} (a module)"),
    "name_attribute_missing.yaml": (
        "1:1",
        "plug_base:Maximal: cannot load benchmark: module 'plug_base' has no attribute 'Maximal'",
    ),
    "name_double_colon.yaml": (
        "1:1",
        "benchmark.name: plug_base::Minimal: expected a registered benchmark name or"
        " 'package.module:Class'",
    ),
    "name_empty.yaml": ("1:1", "'name' must be a non-empty string"),
    "name_empty_module.yaml": (
        "1:1",
        "benchmark.name: :X: expected a registered benchmark name or 'package.module:Class'",
    ),
    "name_function_json_dumps.yaml": (
        "1:1",
        f"benchmark.name: json:dumps: {NOT_A_CLASS} (a function)",
    ),
    "name_function_os_system.yaml": (
        "1:1",
        f"benchmark.name: os:system: {NOT_A_CLASS} (a function)",
    ),
    "name_huge.yaml": (
        "1:1",
        "benchmark.name: benchmark name too long (5011 characters; at most 256)",
    ),
    "name_not_text.yaml": (
        "1:13",
        "benchmark.name: expected a non-empty string, got a list",
    ),
    "name_not_text_attribute.yaml": ("1:1", "'name' must be a non-empty string"),
    "name_private_path.yaml": (
        "1:1",
        f"plug_base:Minimal.__init__.__globals__: {NOT_A_CLASS} (a dict value)",
    ),
    "name_registered_typo.yaml": (
        "1:1",
        "benchmark.name: unknown benchmark 'speach' (did you mean \"speech\"?)",
    ),
    "name_relative_module.yaml": (
        "1:1",
        "benchmark.name: ..:x: expected a registered benchmark name or 'package.module:Class'",
    ),
    "name_trailing_dot.yaml": (
        "1:1",
        "benchmark.name: plug_base:Minimal.: expected a registered benchmark name",
    ),
    "name_with_newline.yaml": (
        "1:1",
        "benchmark.name: 'plug_base\\n:Minimal': expected a registered benchmark name",
    ),
    "not_a_benchmark.yaml": (
        "1:1",
        f"plug_not_a_benchmark:Bench: {NOT_A_CLASS} (Bench is no subclass of"
        " supervisor.benchmarks.Benchmark)",
    ),
    "option_bound_nan.yaml": ("1:1", "options.size: low/high must be finite numbers, got nan"),
    "option_default_inf.yaml": (
        "1:1",
        "options.scale: bad default (expected a finite number, got inf)",
    ),
    "option_default_nan.yaml": (
        "1:1",
        "options.scale: bad default (expected a finite number, got nan)",
    ),
    "option_default_none.yaml": ("1:1", "options.path: bad default (None has no type to check"),
    "option_default_not_a_choice.yaml": (
        "1:1",
        "options.task: its default is not valid: expected one of 'ar', 'wf', got 'tc'",
    ),
    "option_default_object.yaml": (
        "1:1",
        "options.where: bad default (a object cannot be stored with the study)",
    ),
    "option_default_out_of_range.yaml": (
        "1:1",
        "options.size: its default is not valid: must be >= 1, got 0",
    ),
    "option_of_no_options.yaml": (
        "1:50",
        "benchmark.options.size: unknown option for benchmark 'minimal'; known: none",
    ),
    "option_value_binary.yaml": (
        "1:58",
        "benchmark.options.tags[0]: binary data (!!binary) cannot be stored with the study",
    ),
    "option_value_date.yaml": (
        "1:58",
        "benchmark.options.tags[0]: YAML reads 2024-05-01 as a date, which the study cannot"
        " store; quote it",
    ),
    "option_value_nan.yaml": (
        "1:51",
        "benchmark.options.scale: expected a finite number, got nan",
    ),
    "options_a_list.yaml": ("1:1", "'options' must be a mapping of name -> Option, got ['size']"),
    "options_name_not_identifier.yaml": (
        "1:1",
        "'options' names must be identifiers, got 'data size'",
    ),
    "options_not_option.yaml": ("1:1", "options.size: expected an Option(default, help), got 10"),
    "predict_wrong_signature.yaml": ("1:1", "predict() must take (model, x)"),
    "raises_on_import.yaml": (
        "1:1",
        "plug_raises_on_import:Bench: cannot load benchmark: importing plug_raises_on_import"
        " raised RuntimeError: plugin needs a GPU at import time",
    ),
    "ranks_unsupported.yaml": ("5:1", "ranks: this benchmark does not support ranks > 1"),
    "sequence_without_decode.yaml": (
        "5:1",
        "ensemble: benchmark 'minimal' has no decode(), which sequence ensembles need",
    ),
    "supports_ranks_text.yaml": ("1:1", "'supports_ranks' must be true or false, got 'yes'"),
    "syntax_error.yaml": (
        "1:1",
        "plug_syntax_error:Bench: cannot load benchmark: importing plug_syntax_error raised"
        " SyntaxError: invalid syntax",
    ),
    "tiny_options_invalid.yaml": ("1:1", "tiny_options.size: must be >= 1, got 0"),
    "tiny_params_not_mapping.yaml": ("1:1", "'tiny_params' must be a mapping, got [1, 2]"),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    """Every case through every command, each in a fresh copy of its directory."""
    jobs, dirs = [], {}
    for case in sorted(EXPECTED):
        for command, args in COMMANDS.items():
            work = tmp_path_factory.mktemp("case")
            out = tmp_path_factory.mktemp("out")
            for module in CORPUS.glob("plug_*.py"):
                shutil.copyfile(module, work / module.name)
            for name, text in {**GENERATED, **GOOD_RUN}.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            shutil.copyfile(CORPUS / case, work / case)
            dirs[(case, command)] = (work, snapshot(work))
            jobs.append((work, [*args, case], out))
    results = run_cases(jobs)
    return {
        key: Outcome(code, stdout, stderr, before, snapshot(work))
        for (key, (work, before)), (code, stdout, stderr) in zip(
            dirs.items(), results, strict=True
        )
    }


def test_the_corpus_and_its_expectations_match() -> None:
    assert {p.name for p in CORPUS.glob("*.yaml")} == set(EXPECTED)
    assert len(EXPECTED) >= 40
    modules = {p.stem for p in CORPUS.glob("plug_*.py")} | {"plug_syntax_error"}
    named = set()
    for case in EXPECTED:
        bench = yaml.safe_load((CORPUS / case).read_text())["benchmark"]
        name = bench["name"] if isinstance(bench, dict) else bench
        named.add(str(name).partition(":")[0])
    assert modules <= named | {"plug_base"}, "a module no case uses"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_broken_plugin_is_refused_in_one_line_and_nothing_is_written(
    case: str, command: str, outcomes: dict[tuple[str, str], Outcome]
) -> None:
    result = outcomes[(case, command)]
    where, fragment = EXPECTED[case]
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {case}:{where}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert len(lines[0]) < 1000, "one readable line, not a dump"
    assert result.after == result.before  # runs/, reports/, the modules: byte-identical
