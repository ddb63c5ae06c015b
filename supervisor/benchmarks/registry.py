"""Benchmark names -> "module:attr" strings, resolved lazily.

The driver and the CLI look benchmarks up here without importing TensorFlow: a
benchmark module imports only numpy at the top. Third-party packages add benchmarks
through the ``supervisor.benchmarks`` entry-point group. What ``load`` returns has
passed the contract check, so a broken plugin is refused on the driver, in one line.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from supervisor.benchmarks import trust
from supervisor.benchmarks.contract import PluginError, check_class
from supervisor.errors import did_you_mean

if TYPE_CHECKING:
    from supervisor.benchmarks.base import Benchmark

BUILTIN: dict[str, str] = {
    "weather": "benchmarks_sci.weather:WeatherBenchmark",
    "cosmogan": "benchmarks_sci.cosmogan:CosmoGANBenchmark",
    "speech": "benchmarks_sci.speech:SpeechBenchmark",
    "nanopore": "benchmarks_sci.nanopore:NanoporeBenchmark",
}

ENTRY_POINT_GROUP = "supervisor.benchmarks"
MAX_NAME = 256  # characters of a name or "module:attr"


@cache
def benchmarks() -> dict[str, str]:
    """Every known benchmark name and its target; entry points may add to the built-ins."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def target(name: str) -> str:
    """The "module:attr" of a registered name; a "module:attr" itself is accepted as is
    when both parts are dotted Python names."""
    if len(name) > MAX_NAME:
        raise PluginError(f"benchmark name too long ({len(name)} characters; at most {MAX_NAME})")
    if ":" in name:
        module, _, attr = name.partition(":")
        if not (_dotted(module) and _dotted(attr)):
            raise PluginError(
                f"{_shown(name)}: expected a registered benchmark name or"
                " 'package.module:Class' (Python names separated by dots)"
            )
        return name
    known = benchmarks()
    if name not in known:
        names = ", ".join(sorted(known))
        raise PluginError(
            f"unknown benchmark {_quoted(name)}{did_you_mean(name, known)}; known: {names}"
        )
    return known[name]


def canonical(name: str) -> str:
    """One spelling per benchmark, for what is kept under its name (a calibration): the
    registered name of a "module:attr" that has one (``weather`` for
    ``benchmarks_sci.weather:WeatherBenchmark``), else the target; a name that is neither
    stays as it is."""
    try:
        spec = target(name)
    except PluginError:
        return name
    return next((n for n, t in benchmarks().items() if t == spec), spec)


def load(target_or_name: str) -> type[Benchmark]:
    """Import the Benchmark class behind a name or a "module:attr" string and check it
    against the contract (``contract.check_class``); PluginError, one line, if either fails."""
    spec = target(target_or_name)
    # Before any import: not a module another user's run names (``trust``).
    trust.check(spec, set(benchmarks().values()))
    module_name, _, attr = spec.partition(":")
    shown = _shown(target_or_name)
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PluginError(f"{shown}: cannot load benchmark: {_one_line(exc)}") from None
    except (Exception, SystemExit) as exc:  # the plugin's own code failed on import
        raise PluginError(
            f"{shown}: cannot load benchmark: importing {module_name} raised"
            f" {type(exc).__name__}: {_one_line(exc)}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise PluginError(f"{shown}: cannot load benchmark: {_one_line(exc)}") from None
        except Exception as exc:  # a module __getattr__ or a descriptor of the plugin
            raise PluginError(
                f"{shown}: cannot load benchmark: reading {part} raised"
                f" {type(exc).__name__}: {_one_line(exc)}"
            ) from None
    return check_class(obj, shown)


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _shown(name: str) -> str:
    """``name`` as it was written, on one short line."""
    text = name if name.isprintable() and "'" not in name else repr(name)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _quoted(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
