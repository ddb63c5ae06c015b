"""Options under the old documentation's name."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    default_options = {"size": Option(10, "data size")}
