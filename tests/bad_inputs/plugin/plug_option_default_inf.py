"""An infinite default."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"scale": Option(float("inf"), "scale")}
