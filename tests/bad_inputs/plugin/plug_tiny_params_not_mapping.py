"""tiny_params is a list."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    tiny_params = [1, 2]  # type: ignore[assignment]
