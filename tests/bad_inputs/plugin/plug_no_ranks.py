"""Trains with its own loop: no ranks."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    supports_ranks = False
