"""What a user copies from README.md works: its space-file example validates, its plugin
example passes the plugin contract, and every ``supervisor`` command and flag it names
exists. Drift between the README and the code fails here, not in a user's terminal."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import typer.main

import supervisor.cli
from supervisor.config import space

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TEXT, re.S)


def _flags() -> dict[str, set[str]]:
    group = typer.main.get_command(supervisor.cli.app)
    commands = getattr(group, "commands", {})
    return {
        name: {o for p in cmd.params if p.param_type_name == "option" for o in p.opts}
        | {o for p in cmd.params if p.param_type_name == "option" for o in p.secondary_opts}
        for name, cmd in commands.items()
    }


def _commands_shown() -> list[str]:
    """Every ``supervisor <command> ...`` in a code span or block of the README."""
    text = TEXT.replace("\\|", "/")  # a table cell's escaped "|": csv\|parquet
    fenced = re.findall(r"```.*?```", text, re.S)
    inline = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    shown = []
    for span in fenced + [s.replace("\n", " ") for s in inline]:
        shown += [m.group(0) for m in re.finditer(r"supervisor [a-z]+[^\n|;`]*", span)]
    return shown


def test_the_space_file_example_validates() -> None:
    (example,) = _blocks("yaml")
    exp = space.loads(example, "README.md")
    assert exp.study_name == "weather-tc" and exp.warm_start and exp.enqueue


def test_the_plugin_example_passes_the_plugin_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = next(b for b in _blocks("python") if "class MyBenchmark" in b)
    (tmp_path / "readme_plugin.py").write_text(plugin)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "readme_plugin", raising=False)
    exp = space.loads(
        'benchmark: {name: "readme_plugin:MyBenchmark", options: {n_train: 10}}\n'
        "objectives: [{metric: val_loss, direction: minimize}]\n"
        "params: {lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}}\n"
        "budget: {trials: 2, epochs: 1}\n",
        "plugin.yaml",
    )
    assert exp.options == {"n_train": 10}


def test_every_command_and_flag_the_readme_names_exists() -> None:
    flags, shown = _flags(), _commands_shown()
    assert len(shown) > 20
    wrong = []
    for line in shown:
        command = line.split()[1]
        if command not in flags:
            if command.rstrip(":") in ("measures", "relies"):  # prose: "the supervisor ..."
                continue
            wrong.append(f"{line!r}: no command {command!r}")
            continue
        # After ``--`` the flags are the search's (``supervisor submit SPACE -- ...``).
        own = line.split(" -- ")[0]
        for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", own):
            if flag not in flags[command]:
                wrong.append(f"{line!r}: {command} has no {flag}")
    assert not wrong, "\n".join(wrong)


def test_search_takes_the_commands_flags_as_keyword_arguments() -> None:
    """The README: ``supervisor.search`` takes the command's flags as keyword arguments,
    ``--plain`` and ``--no-report`` as it says (``--dry-run`` has no call: validate)."""
    import inspect

    import supervisor

    group = typer.main.get_command(supervisor.cli.app)
    search = getattr(group, "commands", {})["search"]
    flags = {p.name for p in search.params if p.param_type_name == "option"}
    renamed = {"plain": "progress", "no_report": "report", "dry_run": None}
    expected = {renamed.get(f, f) for f in flags} - {None}
    assert expected <= set(inspect.signature(supervisor.search).parameters)
