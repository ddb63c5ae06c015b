"""An instance where the class is expected."""

from __future__ import annotations

from plug_base import Minimal

BENCH = Minimal()
