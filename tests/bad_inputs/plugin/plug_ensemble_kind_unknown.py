"""An ensemble kind the supervisor has no aggregator for."""

from __future__ import annotations

from plug_base import Minimal


class Bench(Minimal):
    ensemble_kind = "vote"  # type: ignore[assignment]
