"""build_model wants a third argument."""

from __future__ import annotations

from typing import Any

from plug_base import Minimal


class Bench(Minimal):
    def build_model(self, params: Any, seed: int, extra: Any) -> Any:  # type: ignore[override]
        return None
