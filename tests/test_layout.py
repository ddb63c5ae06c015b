"""The package's shape: layers, no import cycles (function-level imports count), small
modules, private names kept private. Built from the source with ``ast``, so a cycle
hidden in a function body or under ``TYPE_CHECKING`` fails here."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("supervisor", "benchmarks_sci")

# Lowest first: a unit may import the units below it. perf/ is a harness outside the
# library; benchmarks_sci is a plugin, a client of supervisor.benchmarks like any other.
LAYERS = (
    (
        "supervisor.errors",
        "supervisor.atomic",
        "supervisor.rundir",
        "supervisor.optuna_internals",
        "supervisor.unfinished",
    ),
    ("supervisor.benchmarks",),
    ("supervisor.execution",),
    ("supervisor.config",),
    ("supervisor.study",),
    ("supervisor.clusters",),
    ("supervisor.ensemble",),
    ("supervisor.report",),
    ("supervisor.commands",),
    ("supervisor.api", "supervisor"),
    ("supervisor.cli",),
    ("supervisor.perf",),
    ("benchmarks_sci",),
)
MAX_BACK_EDGES = 5
MAX_LINES = 450


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Modules of ours that ``name`` imports anywhere in its source (an import of a
    package counts as its ``__init__``; ``from pkg import mod`` counts both)."""
    known = modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for i in range(len(parts), 0, -1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imports_of(name, path)) for name, path in modules().items()}


def cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer(name: str) -> int:
    best = None
    for level, units in enumerate(LAYERS):
        for unit in units:
            if (name == unit or name.startswith(unit + ".")) and (
                best is None or len(unit) > len(best[1])
            ):
                best = (level, unit)
    assert best is not None, f"{name} belongs to no layer: add its package to LAYERS"
    return best[0]


def test_the_cycle_finder_finds_a_cycle_through_three_modules() -> None:
    edges = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a"}),
        "d": frozenset({"a"}),
    }
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_function_level_imports_are_edges(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from supervisor.errors import UserError\n"
        "def f():\n    from supervisor.study import attrs\n"
    )
    assert imports_of("supervisor.x", source) == {
        "supervisor.errors",
        "supervisor.study",
        "supervisor.study.attrs",
    }


def test_no_import_cycles_counting_function_level_imports() -> None:
    assert cycles(graph()) == []


def test_layers_point_down_with_few_exceptions() -> None:
    back = sorted(
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if layer(target) > layer(name)
    )
    assert len(back) <= MAX_BACK_EDGES, "imports up the layers:\n" + "\n".join(back)


def test_the_library_never_imports_the_example_benchmarks() -> None:
    offenders = sorted(
        name
        for name, targets in graph().items()
        if name.startswith("supervisor.") and not name.startswith("supervisor.perf")
        for target in targets
        if target.startswith("benchmarks_sci")
    )
    assert offenders == []


def test_no_module_is_longer_than_the_limit() -> None:
    long = sorted(
        f"{name}: {n} lines"
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert long == [], f"split these (over {MAX_LINES} lines):\n" + "\n".join(long)


def private_imports(name: str, path: Path) -> list[str]:
    """``from <our module> import _name``: a private name taken from another module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            found += [
                f"{name}: {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and node.module != name
            ]
    return found


def test_private_names_stay_in_their_module(tmp_path: Path) -> None:
    probe = tmp_path / "m.py"
    probe.write_text("from supervisor.config.space import _Parser\n")
    assert private_imports("x", probe) == ["x: supervisor.config.space._Parser"]
    offenders = sorted(
        found for name, path in modules().items() for found in private_imports(name, path)
    )
    assert offenders == []
