"""An option given as a bare default."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    options = {"size": 10}  # type: ignore[dict-item]
