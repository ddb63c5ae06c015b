"""tiny_options that the options refuse."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"size": Option(10, "data size", low=1)}
    tiny_options = {"size": 0}
