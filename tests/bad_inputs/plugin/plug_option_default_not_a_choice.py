"""A default outside its own choices."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {"task": Option("tc", "task", choices=("ar", "wf"))}
