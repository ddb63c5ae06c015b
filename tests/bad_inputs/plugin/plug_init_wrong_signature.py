"""__init__ cannot take the options."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    def __init__(self) -> None:
        super().__init__({})
