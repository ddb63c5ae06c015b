"""fit is a number."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    fit = 3  # type: ignore[assignment]
