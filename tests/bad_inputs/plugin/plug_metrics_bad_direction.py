"""A direction that is neither."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    metrics = {"loss": "lower"}  # type: ignore[dict-item]
