"""The optional predict, given, takes no input."""

from __future__ import annotations

from typing import Any

from plug_base import Minimal


class Bench(Minimal):
    def predict(self, model: Any) -> Any:  # type: ignore[override]
        return None
