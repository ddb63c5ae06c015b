"""fit takes too few arguments."""

from __future__ import annotations

from typing import Any

from plug_base import Minimal


class Bench(Minimal):
    def fit(self, model: Any) -> dict:  # type: ignore[override]
        return {"loss": 0.0}
