"""metrics listed, without directions."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    metrics = ["loss"]  # type: ignore[assignment]
