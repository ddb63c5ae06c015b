"""A default no study can store."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"where": Option(object(), "where")}
