"""``search --dry-run --launcher local.yaml`` shows the packing the search then uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from supervisor.commands.describe import describe_search
from supervisor.commands.search import SearchOptions
from supervisor.execution import calibrate
from tests.execution.test_calibrate import fake

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_benchmark:ToyBenchmark"


def calibrated_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str = "") -> Path:
    """A toy space file of 3 trials, and this host's calibration of it: 1 trial x 1 thread."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    calibrate.save(replace(fake(), benchmark=TOY, trials_per_node=1))
    space = tmp_path / "toy.yaml"
    space.write_text(
        f'benchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n{node}'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 3}\n"
    )
    return space


def test_a_local_profile_that_sizes_nothing_shows_the_calibrated_packing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """launchers/local.yaml sizes nothing, so the search packs trials by this host's
    calibration (1 trial x 1 thread here); its dry run said "sized to this machine"."""
    space = calibrated_space(tmp_path, monkeypatch)
    local = str(ROOT / "launchers" / "local.yaml")
    opts = SearchOptions(space_file=str(space), runs_root=tmp_path / "runs", launcher=local)
    assert describe_search(opts) == (
        f"launcher    {local} (local): a local Dask cluster on loopback, 1 workers x 1"
        " thread(s) per trial (packing from supervisor calibrate)"
    )
    cores = len(calibrate.usable_cores())
    assert describe_search(replace(opts, threads=1)) == (  # a flag wins, as in the search
        f"launcher    {local} (local): a local Dask cluster on loopback, {cores} workers x 1"
        " thread(s) per trial"
    )


def test_a_search_that_trains_with_other_node_settings_than_calibrated_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes train with the node settings' defaults; a space file's ``xla: on`` (twice as
    slow on a CPU node) took the packing measured without it in silence."""
    from supervisor.commands.summary import describe_experiment
    from supervisor.config import space as spaces

    space = calibrated_space(tmp_path, monkeypatch, node='node: {xla: "on"}\n')
    opts = SearchOptions(space_file=str(space), runs_root=tmp_path / "runs")
    shown = describe_experiment(spaces.load(space), opts).splitlines()
    assert shown[-1] == (
        "would run   3 trials on a local Dask cluster of 1 workers x 1 thread(s) per trial"
        " (packing from supervisor calibrate, measured with xla auto, not 'on')"
    )
