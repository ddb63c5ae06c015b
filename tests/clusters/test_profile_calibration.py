"""A launcher profile's calibration is measured for one benchmark: a search of another
is refused before anything starts, unless the profile's own keys size the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.commands.describe import describe_search
from supervisor.commands.search import SearchOptions, search
from supervisor.errors import UserError

TOY = "tests.toy_benchmark:ToyBenchmark"
CALIBRATED = "calibration:\n  benchmark: {name}\n  threads_per_trial: 1\n  trials_per_node: 2\n"


def space(tmp_path: Path) -> str:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 1}\n"
    )
    return str(path)


def profile(tmp_path: Path, head: str, measured_for: str) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(head + CALIBRATED.format(name=measured_for))
    return str(path)


SLURM = "kind: slurm\ncores: 2\nmemory: 1GiB\nwalltime: '01:00:00'\n"


@pytest.mark.parametrize("head", ["kind: local\n", SLURM])
def test_a_calibration_of_another_benchmark_is_refused_before_anything_runs(
    tmp_path: Path, head: str
) -> None:
    """Written by `calibrate weather --write`, the profile packed a search of another model
    (2 trials x 1 thread here) as measured for weather, without a word."""
    ref = profile(tmp_path, head, "weather")
    runs = tmp_path / "runs"
    opts = SearchOptions(space_file=space(tmp_path), launcher=ref, runs_root=runs)
    expected = (
        f"{ref}: calibration: measured for benchmark 'weather', not '{TOY}', which this"
        " command trains: its packing (2 trial(s) x 1 thread(s)) was never measured for"
        f" it; run supervisor calibrate {TOY} --write {ref}, or set the packing in the"
        " profile yourself"
    )
    with pytest.raises(UserError) as dry_run:
        describe_search(opts)  # search --dry-run, and submit's check of the search
    assert str(dry_run.value) == expected
    with pytest.raises(UserError) as started:
        search(opts)
    assert str(started.value) == expected
    assert not runs.exists()


def test_a_calibration_of_this_benchmark_or_one_the_profile_overrides_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node of 4 cores, which sized by default gets 4 workers, not the calibrated 2.
    monkeypatch.setattr("supervisor.clusters.local.usable_cores", lambda: 4)
    opts = SearchOptions(space_file=space(tmp_path), runs_root=tmp_path / "runs")
    same = profile(tmp_path, "kind: local\n", TOY)
    assert describe_search(SearchOptions(**{**vars(opts), "launcher": same})).endswith(
        "2 workers x 1 thread(s) per trial"
    )
    # --workers and --threads win over a local profile's calibration: nothing to refuse.
    other = profile(tmp_path, "kind: local\n", "weather")
    flags = {**vars(opts), "launcher": other, "workers": 1, "threads": 1}
    assert describe_search(SearchOptions(**flags)).startswith(f"launcher    {other} (local)")
    # The profile's own keys win over the calibration: it sizes nothing, nothing to refuse.
    own = profile(tmp_path, "kind: local\nworkers: 1\nthreads: 1\n", "weather")
    assert describe_search(SearchOptions(**{**vars(opts), "launcher": own})).endswith(
        "1 workers x 1 thread(s) per trial"
    )


def test_calibrate_says_when_it_replaces_another_benchmark_s_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Calibrating a second benchmark into a shared profile silently took it from the
    first one's searches (now refused with it, and before that mis-sized)."""
    from supervisor.commands.calibration import calibrate as command
    from supervisor.execution import calibrate

    def measure(target: str, options: Any, packing: Any, *args: Any, **kw: Any) -> Any:
        return calibrate.Measurement(packing, [100.0] * packing.trials)

    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(calibrate, "measure", measure)
    ref = Path(profile(tmp_path, "kind: local\n", "weather"))
    command(TOY, [], False, 1, None, ref)
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"written into {ref}",
        f"note: it replaced the calibration measured for weather: a search of weather with"
        f" {ref} is now refused where this one sizes the cluster; calibrate weather into a"
        " profile of its own",
    ]
    command(TOY, [], False, 1, None, ref)  # the same benchmark again: nothing to say
    assert capsys.readouterr().out.splitlines()[-1] == f"written into {ref}"
