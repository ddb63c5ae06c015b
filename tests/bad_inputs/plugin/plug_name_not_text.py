"""name is a number."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    name = 42  # type: ignore[assignment]
