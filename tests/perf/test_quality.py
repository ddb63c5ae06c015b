"""The search-quality harness runs the real driver on its simulated cluster and prints
regret tables (its figures are measured by running it, not here)."""

from __future__ import annotations

import pytest

from supervisor.perf import quality


def test_a_tiny_quality_run_prints_a_table_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    quality.main(
        ["--problems", "branin", "--inflight", "1,4", "--samplers", "random",
         "--seeds", "2", "--trials", "20", "--every", "10"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "sequential TPE's median regret at 100 trials" in out
    assert out.count("| random ") == 2 and "regret@20" in out


def test_a_curve_counts_trials_and_virtual_time_to_a_target() -> None:
    curve = quality.Curve(regrets=[5.0, 3.0, 4.0, 1.0], times=[10.0, 20.0, 30.0, 40.0])
    assert curve.best_after(3) == 3.0
    assert curve.trials_to(3.0) == 2 and curve.time_to(1.0) == 40.0
    assert curve.trials_to(0.5) is None and curve.time_to(0.5) is None


def test_regret_is_zero_at_the_known_minimizer() -> None:
    import math

    branin = quality.PROBLEMS["branin"]
    at = {"x0": (math.pi + 5) / 15, "x1": 2.275 / 15}
    assert branin.regret(at) == pytest.approx(0.0, abs=1e-5)
