"""A run another user wrote gets none of its benchmark code run as the reader.

Its stored space names the benchmark as ``module:Class``: ``supervisor rerun``,
``report``, ``export --model``, ``Run.model`` and ``Run.benchmark`` imported that module,
a plugin of theirs beside the run, running their code as the reader.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

import supervisor
from supervisor.benchmarks.trust import TRUST_ENV
from supervisor.cli import main
from supervisor.commands.export_model import export_model
from supervisor.study import attrs

PLANTED = "planted_bench_f"
TARGET = f"{PLANTED}:Bench"
PLUGIN = (
    "import pathlib\n"
    "pathlib.Path(__file__).with_name('ran').write_text('their code ran')\n"
    "from tests.toy_benchmark import ToyBenchmark as Bench\n"
)


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A run of another user's, with a benchmark module of theirs on the reader's path;
    the marker file its import writes."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / f"{PLANTED}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    run_dir = tmp_path / "runs" / "planted"
    run_dir.mkdir(parents=True)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / "journal.log"))
    )
    study = optuna.create_study(study_name="planted", storage=storage)
    source = {
        "study": "planted",
        "benchmark": {"name": TARGET},
        "objectives": ["loss"],
        "params": {"x": {"type": "float", "low": -4, "high": 4}},
        "budget": {"trials": 1, "epochs": 1},
    }
    study.set_user_attr(attrs.CONFIG, {"source": source, "benchmark": {"name": TARGET}})
    model = run_dir / "trials" / "000000" / "model.npz"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    np.savez(model.with_name("artifacts.npz"), confusion=np.eye(2))  # a report reads names
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(-4, 4)},
            value=1.0,
            user_attrs={
                attrs.PROVENANCE: {"seed": 1, "data_seed": 2},
                attrs.MODEL: "m",
                attrs.ARTIFACTS: "trials/000000/artifacts.npz",
            },
        )
    )
    record = {"study": "planted", "storage": None, "space_file": "s.yaml", "command": "x"}
    (run_dir / "run.json").write_text(json.dumps(record))
    mine = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: mine + 1)  # the run is now another user's
    monkeypatch.delenv(TRUST_ENV, raising=False)
    yield tmp_path / "plugins" / "ran"
    sys.modules.pop(PLANTED, None)


USES: dict[str, Callable[[supervisor.Run], Any]] = {
    "rerun": lambda run: run.rerun(0),
    "model": lambda run: run.model(0),
    "benchmark": lambda run: run.benchmark(),
    "trial's benchmark": lambda run: run.benchmark(0),
    "export": lambda run: export_model(str(run.run_dir), "0", None, "npz", Path("runs")),
}


@pytest.mark.parametrize("use", USES)
def test_another_users_benchmark_module_is_never_imported(
    planted: Path, tmp_path: Path, use: str
) -> None:
    run = supervisor.open_run(tmp_path / "runs" / "planted")
    with pytest.raises(supervisor.UserError) as caught:
        USES[use](run)
    said = str(caught.value)
    assert said.startswith(f"{run.run_dir}: written by another user (uid {os.getuid() - 1})")
    assert said.endswith(f"{TRUST_ENV}='{TARGET}'") and "\n" not in said
    assert not planted.exists() and PLANTED not in sys.modules


def test_its_report_is_written_without_importing_it(planted: Path, tmp_path: Path) -> None:
    """The report imported it only for class names: it is written without them."""
    written = supervisor.open_run(tmp_path / "runs" / "planted").report(tmp_path / "r.html")
    assert "Confusion matrix" in written[-1].read_text()
    assert not planted.exists() and PLANTED not in sys.modules


def test_a_benchmark_the_reader_names_is_imported(
    planted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRUST_ENV, f"other:Thing {TARGET}")
    bench = supervisor.open_run(tmp_path / "runs" / "planted").benchmark()
    assert type(bench).__name__ == "ToyBenchmark" and planted.exists()


@pytest.mark.parametrize(
    "argv", [["rerun", "planted", "0"], ["export", "planted", "--model", "0"]]
)
def test_the_command_says_it_in_one_line_and_exits_2(
    planted: Path,
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["supervisor", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    said = capsys.readouterr().err
    assert exited.value.code == 2 and len(said.strip().splitlines()) == 1
    assert f"{TRUST_ENV}='{TARGET}'" in said
    assert not planted.exists() and list((tmp_path / "runs" / "planted").glob("model*")) == []
