"""A module whose attribute lookup fails."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    raise RuntimeError(f"lazy import of {name} failed")
