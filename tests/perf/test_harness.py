"""The performance scripts' own pieces work (figures are not asserted: they are printed by
``python -m supervisor.perf.<name>``, not timed in tests)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor.perf import harness, sampler_cost, scale


def test_figures() -> None:
    assert harness.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert harness.percentile([3.0, 1.0, 2.0, 4.0], 99) == 4.0
    text = harness.table(["name", "ms"], [["a", 1.5], ["bb", 12.25]])
    lines = text.splitlines()
    assert lines[0].startswith("| name") and len({len(line) for line in lines}) == 1
    assert harness.verdict(1.2, 1.5) == "met" and harness.verdict(0.9, 0.97, True) == "MISSED"


def test_noop_benchmark_reports_every_epoch(tmp_path: Path) -> None:
    bench = harness.NoopBenchmark({"seconds": 0.0})
    params = {"x0": 1.0}
    seen: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append(epoch)
        return False

    fitted = bench.fit(bench.build_model(params, 0), bench.load_data(0), params, 3, report)
    assert seen == [0, 1, 2] and fitted == {"loss": 1.0}
    assert harness.direct_trial(params) == 1.0
    exp = harness.experiment(tmp_path, trials=7, n_params=8)
    assert exp.benchmark_target == harness.NOOP_TARGET and len(exp.params) == 8
    assert exp.budget.trials == 7 and exp.sampler == "random"


@pytest.mark.parametrize("storage", ["memory", "journal"])
def test_scale_simulation_runs_the_real_driver(storage: str) -> None:
    sizes = ["--workers=4", "--trials=40", "--mean=10", "--epochs=2", "--params=3"]
    args = scale.parse_args([*sizes, f"--storage={storage}", "--dask-ms=0"])
    cluster, probe, makespan, _ = scale.simulate(args)
    assert probe.finished == 40 and len(probe.told_at) == 40
    assert all(slot.busy > 0 for slot in cluster.slots)
    busy = sum(s.busy for s in cluster.slots)
    assert 0.5 < busy / sum(s.busy + s.idle for s in cluster.slots) <= 1.0
    assert makespan >= busy / args.workers
    scale.report(args, cluster, probe, makespan)  # prints; must not fail on small runs


def test_sampler_cost_times_every_cell(tmp_path: Path) -> None:
    args = sampler_cost.parse_args(["--samplers=random,tpe", "--window=2", "--params=4"])
    cells = sampler_cost.measure_storage(args, "journal", [12, 30], tmp_path)
    assert sorted(cells) == [("random", 12), ("random", 30), ("tpe", 12), ("tpe", 30)]
    assert all(len(cell.total) == 2 for cell in cells.values())


def test_sampler_cost_keeps_trials_in_flight_while_it_times_and_finishes_them_after(
    tmp_path: Path,
) -> None:
    """``--pending``: the timed proposals see that many running trials, as a campaign's
    do; each sampler's are told before the next, so none sees another's."""
    from optuna.trial import TrialState

    args = sampler_cost.parse_args(["--samplers=turbo,random", "--window=2", "--pending=5"])
    seen: list[int] = []
    timed = sampler_cost.driver_trial

    def counting(study: Any, exp: Any, cell: sampler_cost.Cell) -> None:
        seen.append(len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))
        timed(study, exp, cell)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sampler_cost, "driver_trial", counting)
        cells = sampler_cost.measure_storage(args, "memory", [20], tmp_path)
    assert seen == [5, 5, 5, 5] and sorted(cells) == [("random", 20), ("turbo", 20)]


def test_compare_runner_imports_only_the_standard_library_at_the_top() -> None:
    """It runs in the comparison environment, where the supervisor is not installed."""
    path = Path(harness.__file__).with_name("compare_runner.py")
    tree = ast.parse(path.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}
