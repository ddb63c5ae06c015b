"""The UQ report's verdict, ensemble against its best member, per metric."""

from __future__ import annotations

from supervisor.ensemble.aggregate import TARGETS
from supervisor.report.uq import _verdict


def test_an_interval_is_judged_by_how_near_its_coverage_is_to_its_level() -> None:
    """A 90 % interval that covers every target is too wide, not better than one that
    covers 90 %: the report called it "ensemble better"."""
    target = TARGETS["coverage_90"]
    assert _verdict(1.0, 0.896, True, target) == "member better"
    assert _verdict(0.91, 0.8, True, target) == "ensemble better"
    assert _verdict(0.2, 0.3, True) == "ensemble better"  # NLL: lower is better
    assert _verdict(0.2, 0.3, False) == "member better"
