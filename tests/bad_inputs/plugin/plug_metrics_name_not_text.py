"""A metric named by a number."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    metrics = {1: "minimize"}  # type: ignore[dict-item]
