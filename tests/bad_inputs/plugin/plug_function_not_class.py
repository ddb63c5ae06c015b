"""A factory function where the class is expected."""

from __future__ import annotations

from plug_base import Minimal


def make() -> type[Minimal]:
    return Minimal
