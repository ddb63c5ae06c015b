"""A default outside its own range."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"size": Option(0, "data size", low=1)}
