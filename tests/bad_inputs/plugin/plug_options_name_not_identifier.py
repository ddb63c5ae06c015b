"""An option name with a space."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"data size": Option(10, "data size")}
