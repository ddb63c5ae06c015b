"""A valid plugin with options, for space files that give them bad values."""

from __future__ import annotations

from plug_base import Minimal

from supervisor.benchmarks import Option


class Bench(Minimal):
    options = {
        "scale": Option(1.0, "a float option", low=0.0),
        "tags": Option(["a"], "a list option"),
    }
