"""A flag given as text."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    supports_ranks = "yes"  # type: ignore[assignment]
