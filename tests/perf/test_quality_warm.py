"""The warm-start harness: campaigns told an earlier campaign's trials three ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor.perf import quality_warm


def test_a_tiny_warm_run_tells_the_earlier_failures_only_where_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "warm.json"
    quality_warm.main(
        ["--problems", "fail-branin", "--sampler", "random", "--inflight", "2", "--seeds", "2",
         "--first", "12", "--trials", "8", "--json", str(out_json)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "cold @4" in out and "warm failed" in out and "Over 1 problem(s)" in out
    rows = json.loads(out_json.read_text())
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        # The answer is the best of the trials told and the campaign's own.
        assert r["complete"]["end"] <= r["told_best"] and r["warm"]["end"] <= r["told_best"]
        assert r["cold"]["half"] >= r["cold"]["end"] and 0 <= r["cold"]["failed"] <= 8
    assert sum(r["told_failed"] for r in rows) > 0, "a fail- problem's edge is met by 12 trials"
