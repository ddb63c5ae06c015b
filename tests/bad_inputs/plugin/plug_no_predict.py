"""Valid, without the optional predict."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    ensemble_kind = "classification"
