"""The ``supervisor`` command as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest

from supervisor.errors import UserError
from supervisor.study import attrs
from supervisor.study.storage import load_study

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.toy_benchmark:ToyBenchmark"


def cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def toy_space(tmp_path: Path, trials: int = 8, delay: float = 0.0, epochs: int = 2) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(
        f'benchmark: {{name: "{TOY}", options: {{delay: {delay}}}}}\n'
        "objectives: [loss]\n"
        "params:\n"
        "  x: {type: float, low: -4, high: 4}\n"
        "  mode: [ok, raise]\n"
        f"budget: {{trials: {trials}, epochs: {epochs}}}\n"
        "sampler: random\n"
        "seed: 11\n"
    )
    return path


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_help_is_fast_because_nothing_heavy_is_imported() -> None:
    code = (
        "import sys, supervisor.cli, supervisor.commands.search;"
        "import supervisor.study.driver, supervisor.config.space;"
        "heavy = {'tensorflow', 'keras', 'jax', 'torch'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert cli("--help", cwd=ROOT).returncode == 0


def test_every_command_and_option_has_a_finished_help_sentence() -> None:
    """``--help`` is what a user reads first: a help text cut mid-sentence (``chain
    --since`` said "Exit 0 when the budget is done, 3 when this link") tells them nothing."""
    import typer.main

    import supervisor.cli

    group = typer.main.get_command(supervisor.cli.app)
    unfinished = [
        f"{name} {getattr(p, 'opts', [p.name])[0]}: {getattr(p, 'help', None)!r}"
        for name, cmd in getattr(group, "commands", {}).items()
        for p in [*cmd.params, cmd]
        if not (getattr(p, "help", None) or "").rstrip().endswith(".")
    ]
    assert not unfinished, unfinished


def test_the_api_imports_optuna_only_when_a_search_needs_it() -> None:
    """Optuna imports tqdm.auto, which warns in a notebook's first cell ("IProgress not
    found"); the API imports it under a filter (``api._import_optuna``), so no module on
    the way there may import it first (the notebook test sees the warning, slowly)."""
    code = "import sys, supervisor.api, supervisor.commands.search; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_command_list_reads_as_sentences() -> None:
    """A docstring's line breaks cut a command's description mid-sentence in the list."""
    shown = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    assert any("report. Members the search saved" in line for line in shown.splitlines()), shown


BAD_SPACES = {
    "misspelled key": ("budjet: {trials: 1}\n", 'did you mean "budget"'),
    "low > high": (
        f'benchmark: "{TOY}"\nparams:\n  x: {{type: float, low: 3, high: 1}}\n'
        "budget: {trials: 1}\n",
        "params.x.low",
    ),
    "unknown benchmark": (
        "benchmark: wether\nparams: {}\nbudget: {trials: 1}\n",
        'did you mean "weather"',
    ),
    "not yaml": ("benchmark: [unclosed\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, words = BAD_SPACES[case]
    (tmp_path / "bad.yaml").write_text(text)
    before = tree(tmp_path)
    for command in (["search", "bad.yaml"], ["validate", "bad.yaml"]):
        result = cli(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: bad.yaml") and words in lines[0]
        assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before  # no run directory, no storage, no report


def test_validate_prints_the_resolved_space_and_writes_nothing(tmp_path: Path) -> None:
    toy_space(tmp_path)
    before = tree(tmp_path)
    result = cli("validate", "toy.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "x     float in [-4, 4]" in result.stdout
    assert "would run   8 trials" in result.stdout
    assert "sampler     random, seed" in result.stdout  # as the file names it
    dry = cli("search", "toy.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and dry.stdout == result.stdout
    assert tree(tmp_path) == before
    unnamed = tmp_path / "unnamed.yaml"  # no sampler: the default for its space, said so
    unnamed.write_text((tmp_path / "toy.yaml").read_text().replace("sampler: random\n", ""))
    result = cli("validate", "unnamed.yaml", cwd=tmp_path)
    assert "sampler     turbo (the default for this space), seed" in result.stdout


def test_timeout_takes_the_durations_budget_timeout_takes(tmp_path: Path) -> None:
    """``--timeout`` overrides ``budget.timeout``, which reads 90s / 30m / 2h / 1h30m / 1d:
    ``--timeout 2h`` was refused ("Input should be a valid number")."""
    from supervisor.api import search_options

    toy_space(tmp_path)
    dry = cli("search", "toy.yaml", "--timeout", "1h30m", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "timeout 5400 s" in dry.stdout
    assert search_options(tmp_path / "toy.yaml", timeout="2h").timeout == 7200
    bad = cli("search", "toy.yaml", "--timeout", "2x", "--dry-run", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--timeout '2x': expected seconds (or 90s, 30m, 2h, 1h30m, 1d)" in bad.stderr


def test_search_then_export_status_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    toy_space(tmp_path, trials=8)
    result = cli("search", "toy.yaml", "--workers", "2", "--plain", "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://127.0.0.1:" in result.stdout
    assert "  from another machine: ssh -L " in result.stdout
    assert "Finished trials: 8 of 8 requested" in result.stdout
    record = json.loads((tmp_path / "runs" / "toy" / "run.json").read_text())
    assert record["study"] == "toy" and record["storage"] is None

    for fmt in ("csv", "parquet"):
        out = cli("export", "toy", "--format", fmt, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        path = tmp_path / "runs" / "toy" / f"trials.{fmt}"
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        assert len(frame) == 8
        assert {"number", "state", "loss", "params_x", "params_mode", "worker", "error"} <= set(
            frame.columns
        )
        failed = frame[frame.state == "FAIL"]
        assert (failed.params_mode == "raise").all()
        assert failed.error.str.contains("exploded on purpose").all()

    status = cli("status", "runs/toy", cwd=tmp_path)
    assert status.returncode == 0 and "finished 8 of 8" in status.stdout

    again = cli("search", "toy.yaml", "--workers", "2", "--plain", "--no-report", cwd=tmp_path)
    assert again.returncode == 0 and "Finished trials: 8 of 8" in again.stdout
    study = load_study(f"journal:{tmp_path}/runs/toy/journal.log", "toy")
    assert len(study.trials) == 8


def test_killed_driver_resumes_with_exact_counts(tmp_path: Path) -> None:
    """kill -9 the whole campaign mid-way; the same command finishes it exactly."""
    toy_space(tmp_path, trials=16, delay=0.25, epochs=2)
    args = [sys.executable, "-m", "supervisor.cli", "search", "toy.yaml", "--workers", "2"]
    args += ["--plain", "--no-report", "--dashboard", ":0"]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the kill takes the workers down with the driver
    )
    url = f"journal:{tmp_path}/runs/toy/journal.log"
    deadline = time.monotonic() + 120
    finished = 0
    while time.monotonic() < deadline and finished < 4:
        time.sleep(0.3)
        if (tmp_path / "runs" / "toy" / "journal.log").exists():
            try:
                study = load_study(url, "toy")
            except UserError:  # the journal exists a moment before the study in it
                continue
            finished = sum(1 for t in study.trials if attrs.counts_toward_budget(t))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 4 <= finished < 16, "the kill must land mid-campaign"

    study = load_study(url, "toy")
    left_running = [t.number for t in study.trials if t.state.name == "RUNNING"]
    assert left_running, "a mid-campaign kill leaves RUNNING trials behind"

    result = cli("search", "toy.yaml", "--workers", "2", "--plain", "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"closed {len(left_running)} trial(s) left running by a dead driver" in result.stdout

    study = load_study(url, "toy")
    states = Counter(t.state.name for t in study.trials)
    assert states["RUNNING"] == 0
    assert sum(1 for t in study.trials if attrs.counts_toward_budget(t)) == 16
    zombies = [t for t in study.trials if t.number in left_running]
    assert all(t.user_attrs[attrs.FAILURE] == "infrastructure" for t in zombies)
    rerun = {t.user_attrs.get(attrs.RETRY_OF) for t in study.trials}
    assert set(left_running) <= rerun  # every zombie's parameters ran again
    assert isinstance(study, optuna.Study)
