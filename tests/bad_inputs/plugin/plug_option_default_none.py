"""A None default: no value could ever pass its type check."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"path": Option(None, "where")}
