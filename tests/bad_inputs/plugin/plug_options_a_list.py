"""options is a list."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    options = ["size"]  # type: ignore[assignment]
