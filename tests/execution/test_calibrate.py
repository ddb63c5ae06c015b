"""``supervisor calibrate``: the packing grid, where results are kept, and their use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from supervisor.clusters import profile as profile_file
from supervisor.commands.packing import packing as _packing
from supervisor.commands.search import SearchOptions
from supervisor.execution import calibrate, calibrate_profile


def run_calibrate(
    *args: str, cache: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``supervisor calibrate ARGS`` in a fresh process, its results kept under ``cache``."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "calibrate", *args],
        capture_output=True,
        text=True,
        env={**os.environ, calibrate.CACHE_ENV: str(cache)},
        timeout=timeout,
    )


def test_the_grid_covers_every_packing_that_fits_the_cores() -> None:
    assert [(p.threads, p.trials) for p in calibrate.grid(2)] == [(1, 1), (1, 2), (2, 1)]
    six = calibrate.grid(6)
    assert all(p.cores <= 6 for p in six)
    assert {(1, 6), (6, 1), (2, 2), (4, 1)} <= {(p.threads, p.trials) for p in six}


@pytest.mark.parametrize("cores", [6, 12, 40, 48, 56, 96])
def test_every_thread_and_trial_count_is_tried_filling_a_node_of_any_core_count(
    cores: int,
) -> None:
    """On a 40-core node (2 x 20-core Xeons) the only whole-node packings tried were
    1 x 40 and 40 x 1: the best of the others left up to 8 cores idle, and calibrate
    wrote that into the profile's cores."""
    found = calibrate.grid(cores)
    assert found[0] == calibrate.Packing(1, 1)  # the lone trial first: it sets the limits
    assert len(set(found)) == len(found) and all(p.cores <= cores for p in found)
    for t in {p.threads for p in found}:  # no room left for one more trial of t threads
        assert max(p.cores for p in found if p.threads == t) > cores - t
    for k in {p.trials for p in found}:  # nor for one more thread in each of k trials
        assert max(p.cores for p in found if p.trials == k) > cores - k


def fake(cores: int | None = None, cpu: str | None = None) -> calibrate.Calibration:
    return calibrate.Calibration(
        benchmark="weather",
        host=__import__("socket").gethostname(),
        cpu=cpu or calibrate.cpu_model(),
        cores=cores or len(calibrate.usable_cores()),
        options={},
        threads_per_trial=1,
        trials_per_node=3,
        samples_per_s=1234.5,
        table=[],
        created=0.0,
    )


def test_a_saved_calibration_sets_the_local_packing_unless_the_user_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    opts = SearchOptions(space_file="x.yaml")
    assert _packing(opts, "weather", True) == (None, None, "")
    calibrate.save(fake())
    workers, threads, note = _packing(opts, "weather", True)
    assert (workers, threads) == (3, 1) and "calibrate" in note
    assert _packing(replace(opts, workers=2), "weather", True)[:2] == (2, None)
    assert _packing(opts, "weather", False) == (None, None, "")  # a launcher profile decides
    assert _packing(opts, "speech", True) == (None, None, "")  # another benchmark
    # One measured on another core count (calibrate --cores, another allocation) is kept
    # beside it: it replaced this node's, which the search then could not use.
    cores = len(calibrate.usable_cores())
    calibrate.save(fake(cores=cores + 8))
    assert _packing(opts, "weather", True)[:2] == (3, 1)
    # A calibration from another node shape no longer applies, and the search says so
    # (it packed by its default without a word after the user had calibrated).
    calibrate.cache_path("weather", cores=cores, options={}).unlink()
    assert _packing(opts, "weather", True) == (
        None,
        None,
        f" (calibration {calibrate.cache_path('weather', cores=cores + 8, options={})} was"
        " measured on"
        f" {cores + 8} core(s), this node has {cores} usable: not used; rerun supervisor"
        " calibrate weather here)",
    )
    calibrate.save(fake(cpu="Another CPU"))
    assert "measured on Another CPU, this node's CPU is " in _packing(opts, "weather", True)[2]
    # One saved before its file named its core count is still found.
    for path in tmp_path.iterdir():
        path.unlink()
    calibrate.cache_path("weather").write_text(json.dumps(fake().to_dict()))
    assert _packing(opts, "weather", True)[:2] == (3, 1)


def test_a_quick_check_with_other_options_is_kept_beside_the_full_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`calibrate weather --tiny`, a minute's check, replaced the hour-long calibration of
    the full data, and the search of the full data packed by the tiny one's result."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    opts = SearchOptions(space_file="x.yaml")
    full, tiny = {"n": 20000}, {"n": 300}
    os.utime(calibrate.save(replace(fake(), options=full, trials_per_node=2)), (0, 0))
    calibrate.save(replace(fake(), options=tiny, trials_per_node=3))
    assert _packing(opts, "weather", True, full) == (2, 1, " (packing from supervisor calibrate)")
    assert _packing(opts, "weather", True, tiny)[:2] == (3, 1)
    # Options never calibrated: the newest result, saying how it was measured.
    assert _packing(opts, "weather", True, {"n": 5}) == (
        3,
        1,
        " (packing from supervisor calibrate, measured with n 300, not 5)",
    )


def test_a_calibration_is_found_whichever_way_the_benchmark_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibrated as `weather`, a space file's `benchmark:
    benchmarks_sci.weather:WeatherBenchmark` (or the reverse) found no calibration, and
    the search packed by its default without a word."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    opts = SearchOptions(space_file="x.yaml")
    module = "benchmarks_sci.weather:WeatherBenchmark"
    calibrate.save(fake())  # calibrated as `weather`
    assert _packing(opts, module, True)[:2] == (3, 1)
    for path in tmp_path.iterdir():
        path.unlink()
    calibrate.save(replace(fake(), benchmark=module, trials_per_node=2))
    assert _packing(opts, "weather", True)[:2] == (2, 1)
    assert _packing(opts, module, True)[:2] == (2, 1)
    # One saved under the module path before names were made one is still found.
    for path in tmp_path.iterdir():
        path.unlink()
    cores = len(calibrate.usable_cores())
    legacy = tmp_path / f"{module}@{fake().host}.{cores}cores.json"
    legacy.write_text(json.dumps(replace(fake(), benchmark=module).to_dict()))
    assert _packing(opts, module, True)[:2] == (3, 1)


def test_writing_into_a_profile_keeps_it_and_replaces_an_earlier_result(tmp_path: Path) -> None:
    profile = tmp_path / "slurm.yaml"
    profile.write_text("# my site\nkind: slurm\ncores: 8  # per job\n")
    calibrate_profile.write_into_profile(fake(), profile)
    calibrate_profile.write_into_profile(replace(fake(), trials_per_node=4), profile)
    text = profile.read_text()
    assert text.startswith("# my site\nkind: slurm\ncores: 8  # per job\n")
    assert text.count("calibration:") == 1
    data = yaml.safe_load(text)
    assert data["calibration"] == {
        "benchmark": "weather",
        "threads_per_trial": 1,
        "trials_per_node": 4,
    }


def test_calibrate_measures_this_node_and_saves_the_result(tmp_path: Path) -> None:
    env = {**os.environ, calibrate.CACHE_ENV: str(tmp_path)}
    profile = tmp_path / "local.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor.cli",
            "calibrate",
            "weather",
            "--tiny",
            "--cores",
            "1",
            "--write",
            str(profile),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recommended: 1 trial(s) per node x 1 thread(s)" in proc.stdout
    if len(calibrate.usable_cores()) > 1:  # --cores 1 on a bigger node: searches here skip it
        assert (
            f"note: measured on 1 of this node's {len(calibrate.usable_cores())} usable cores:"
            " searches use it where 1 core(s) are usable" in proc.stdout
        )
    saved = json.loads(next(tmp_path.glob("weather@*.json")).read_text())
    assert saved["table"][0]["samples_per_s"] > 0 and saved["cores"] == 1
    written = yaml.safe_load(profile.read_text())  # a new file: a local profile
    assert written["kind"] == "local" and written["calibration"]["trials_per_node"] == 1
    assert profile_file.load(str(profile)).kind == "local"  # a valid profile


def test_a_bad_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "calibrate", "weather", "-o", "n_trian=5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    expected = 'error: --option n_trian: unknown option of weather (did you mean "n_train"?)'
    assert proc.stderr.strip() == expected


def test_a_plugin_benchmark_s_calibration_is_used_by_its_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`supervisor calibrate pkg.module:Class` saved its result as `Class`, a name no
    space file uses: the search (`benchmark: pkg.module:Class`) never found it."""
    plugin = "tests.toy_classifier:ToyClassifier"
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    profile = tmp_path / "local.yaml"
    command = [sys.executable, "-m", "supervisor.cli", "calibrate", plugin, "--cores", "1"]
    proc = subprocess.run(
        [*command, "--write", str(profile)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0])  # the node it measured
    workers, threads, note = _packing(SearchOptions(space_file="x.yaml"), plugin, True)
    assert (workers, threads) == (1, 1) and "calibrate" in note
    # The profile says how it was made, with a command that runs.
    assert f"# Written by `supervisor calibrate {plugin}`" in profile.read_text()
    assert yaml.safe_load(profile.read_text())["calibration"]["benchmark"] == plugin


def test_a_results_folder_it_cannot_write_is_refused_before_measuring(tmp_path: Path) -> None:
    """The result is saved after every packing was measured (minutes on a big node): a
    results folder that cannot be made failed then, with '[Errno 20] Not a directory',
    and the --write profile was not written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    profile = tmp_path / "local.yaml"
    toy = "tests.toy_classifier:ToyClassifier"
    proc = run_calibrate(
        toy, "--cores", "1", "--write", str(profile), cache=blocker / "calibration"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"error: calibration results folder {blocker / 'calibration'}"
        f" (${calibrate.CACHE_ENV}): {blocker} is not a directory"
    )
    assert proc.stdout == ""  # nothing measured
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_read_only_profile_is_refused_and_a_private_one_stays_private(tmp_path: Path) -> None:
    """--write replaced a read-only profile through a new file (0644 afterwards), and a
    0600 profile (a prologue may export a token) came back world-readable."""
    locked = tmp_path / "slurm.yaml"
    locked.write_text("kind: slurm\ncores: 2\nmemory: 4GiB\n")
    locked.chmod(0o444)
    toy = "tests.toy_classifier:ToyClassifier"
    proc = run_calibrate(toy, "--cores", "1", "--write", str(locked), cache=tmp_path / "cal")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"error: --write {locked}: read-only; chmod u+w {locked} to write into it"
    )
    assert proc.stdout == "" and locked.read_text() == "kind: slurm\ncores: 2\nmemory: 4GiB\n"
    assert locked.stat().st_mode & 0o777 == 0o444 and not (tmp_path / "cal").exists()
    private = tmp_path / "private.yaml"
    private.write_text("kind: slurm\ncores: 2\nmemory: 4GiB\n")
    private.chmod(0o600)
    calibrate_profile.write_into_profile(fake(), private)
    assert private.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(private.read_text())["calibration"]["trials_per_node"] == 3


def test_rewriting_a_calibration_in_mid_file_keeps_the_comments_after_it(tmp_path: Path) -> None:
    """A calibration the user moved up the profile was followed by the user's own comment
    lines: the next --write dropped them with the old section."""
    profile = tmp_path / "slurm.yaml"
    profile.write_text(
        "kind: slurm\n\ncalibration:\n  benchmark: weather\n\n  trials_per_node: 2\n"
        "  threads_per_trial: 1\n\n# -- my site: 2 jobs per user --\nmax_jobs: 2\n"
        "cores: 8\nmemory: 4GiB\n"
    )
    calibrate_profile.write_into_profile(fake(), profile)
    text = profile.read_text()
    assert text.startswith("kind: slurm\n\n# -- my site: 2 jobs per user --\nmax_jobs: 2\n")
    data = yaml.safe_load(text)
    assert data["calibration"]["trials_per_node"] == 3 and data["max_jobs"] == 2
    calibrate_profile.write_into_profile(fake(), profile)
    assert profile.read_text() == text  # a second run replaces its own section


def test_a_profile_whose_own_keys_win_says_so_and_a_broken_result_is_not_written(
    tmp_path: Path,
) -> None:
    """A copy of the shipped slurm.yaml (cores and processes set) took the calibration
    without a word and went on packing its own way; a profile with processes: 2 and its
    cores from the dask config was written with a 1-core calibration (which wins over
    the dask config) and refused by every later search."""
    cal = str(tmp_path / "cal")
    env = {**os.environ, calibrate.CACHE_ENV: cal, "DASK_JOBQUEUE__PBS__CORES": "4"}
    command = [sys.executable, "-m", "supervisor.cli", "calibrate"]
    command += ["tests.toy_classifier:ToyClassifier", "--cores", "1", "--write"]
    own = tmp_path / "slurm.yaml"
    own.write_text("kind: slurm\ncores: 4\nprocesses: 4  # my site\nmemory: 4GiB\n")
    proc = subprocess.run([*command, str(own)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-2:] == [
        f"written into {own}",
        f"note: {own} sets processes: 4, cores: 4 itself, which win over the calibration's"
        " processes: 1, cores: 1; delete them from the profile (or set them to null) to"
        " pack as measured",
    ]
    assert yaml.safe_load(own.read_text())["calibration"]["trials_per_node"] == 1
    broken = tmp_path / "pbs.yaml"
    broken.write_text("kind: pbs\nprocesses: 2\nmemory: 4GiB\n")
    proc = subprocess.run([*command, str(broken)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(
        f"error: --write {broken}: not written, the profile would be refused with the"
        " calibration (1 trial(s) x 1 thread(s)): "
    )
    assert "2 processes need at least as many cores" in proc.stderr
    assert broken.read_text() == "kind: pbs\nprocesses: 2\nmemory: 4GiB\n"


def test_a_local_profile_that_sizes_nothing_uses_the_saved_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """launchers/local.yaml says it is the same as no --launcher, but with it the search
    ignored this host's calibration and packed by the default."""
    toy = "tests.toy_benchmark:ToyBenchmark"
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    calibrate.save(replace(fake(), benchmark=toy, trials_per_node=1))
    space = tmp_path / "toy.yaml"
    space.write_text(
        f'benchmark: {{name: "{toy}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\n"
        "budget: {trials: 1, epochs: 1}\nsampler: random\nseed: 3\n"
    )
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "supervisor.cli", "search", str(space), "--plain"]
    command += ["--no-report", "--dashboard", "127.0.0.1:0", "--runs-dir", str(tmp_path)]
    proc = subprocess.run(
        [*command, "--launcher", str(root / "launchers" / "local.yaml")],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("local cluster"))
    assert line.startswith("local cluster: 1 workers x 1 trial, 1 thread(s) per trial;")
    assert line.endswith(" (packing from supervisor calibrate)")


def test_dry_run_shows_the_packing_the_search_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dry-run said only 'a local Dask cluster': whether the saved calibration would be
    used (or a --threads flag win) showed only once the campaign had started."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path / "cal"))
    toy = "tests.toy_benchmark:ToyBenchmark"
    calibrate.save(replace(fake(), benchmark=toy, trials_per_node=1))
    space = tmp_path / "toy.yaml"
    space.write_text(
        f'benchmark: {{name: "{toy}"}}\nobjectives: [loss]\n'
        "params:\n  x: {type: float, low: -4, high: 4}\nbudget: {trials: 3}\n"
    )
    command = [sys.executable, "-m", "supervisor.cli", "search", str(space), "--dry-run"]
    command += ["--runs-dir", str(tmp_path / "runs")]

    def would_run(*flags: str) -> str:
        proc = subprocess.run([*command, *flags], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return next(li for li in proc.stdout.splitlines() if li.startswith("would run"))

    cores = len(calibrate.usable_cores())
    assert would_run() == (
        "would run   3 trials on a local Dask cluster of 1 workers x 1 thread(s) per trial"
        " (packing from supervisor calibrate)"
    )
    assert would_run("--threads", "1") == (
        f"would run   3 trials on a local Dask cluster of {cores} workers x 1 thread(s) per trial"
    )


def test_a_packing_that_does_not_fit_the_node_is_left_out_not_the_whole_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Many probes at once may not fit a node's memory: one killed by the OOM killer
    ended the calibration with an error after every packing before it was measured
    (an hour on a big node), and nothing was saved."""
    from supervisor.commands.calibration import calibrate as command
    from supervisor.errors import UserError

    def measure(target: str, options: Any, packing: Any, *args: Any, **kwargs: Any) -> Any:
        if packing.trials == 2:
            raise UserError("calibration probe died (exit -9): Killed")
        return calibrate.Measurement(packing, [100.0 * packing.threads])

    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibrate, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(calibrate, "measure", measure)
    command("tests.toy_classifier:ToyClassifier", [], tiny=False, epochs=1, cores=None, write=None)
    out = capsys.readouterr().out.splitlines()
    assert (
        out[2]
        == "            1           2          -  failed: calibration probe died (exit -9): Killed"
    )
    assert out[4] == "recommended: 1 trial(s) per node x 2 thread(s) each (200 samples/s)"
    saved = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert saved["table"][1]["error"] == "calibration probe died (exit -9): Killed"
    # One trial alone failing is the benchmark's fault: stopped at once.
    monkeypatch.setattr(
        calibrate, "measure", lambda *a, **k: (_ for _ in ()).throw(UserError("probe failed: bug"))
    )
    with pytest.raises(UserError, match=r"^probe failed: bug$"):
        command(
            "tests.toy_classifier:ToyClassifier", [], tiny=False, epochs=1, cores=None, write=None
        )


def test_a_calibration_with_other_benchmark_options_is_used_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calibration run with --tiny (a quick check, 256 samples) sized a search of 2000
    samples, where per-epoch overheads weigh otherwise, without a word."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    calibrate.save(replace(fake(), options={"task": "tc", "n_train": 256}))
    opts = SearchOptions(space_file="x.yaml")
    assert _packing(opts, "weather", True, {"task": "tc", "n_train": 2000}) == (
        3,
        1,
        " (packing from supervisor calibrate, measured with n_train 256, not 2000)",
    )
    same = _packing(opts, "weather", True, {"task": "tc", "n_train": 256})
    assert same[2] == " (packing from supervisor calibrate)"


def test_a_benchmark_without_x_train_is_told_before_training(tmp_path: Path) -> None:
    """The samples of an epoch were counted after the warm-up and the timed epochs: a
    plugin whose data has no x_train trained for nothing, then failed with a bare
    "AttributeError: 'dict' object has no attribute 'x_train'"."""
    toy = "tests.toy_benchmark:ToyBenchmark"
    # Each epoch sleeps 30 s: no epoch may run.
    proc = run_calibrate(toy, "--cores", "1", "-o", "delay=30", cache=tmp_path, timeout=25)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: calibration probe failed: TypeError: load_data returned a dict without a"
        " sized x_train; calibrate counts the samples of an epoch as len(data.x_train)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_profile_reached_through_a_link_is_written_where_the_link_points(
    tmp_path: Path,
) -> None:
    """--write my.yaml, a link to the site's profile, replaced the link with a copy: the
    site's profile never got the calibration and the link no longer followed it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "slurm.yaml").write_text("kind: slurm\ncores: 2\nmemory: 4GiB\n")
    link = tmp_path / "my.yaml"
    link.symlink_to("site/slurm.yaml")
    toy = "tests.toy_classifier:ToyClassifier"
    proc = run_calibrate(toy, "--cores", "1", "--write", str(link), cache=tmp_path / "cal")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert link.is_symlink()
    assert yaml.safe_load((site / "slurm.yaml").read_text())["calibration"]["trials_per_node"] == 1
