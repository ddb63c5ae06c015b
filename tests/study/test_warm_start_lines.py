"""What a resumed search and its dry run say of warm-start sources an earlier start added."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import create_trial
from typer.testing import CliRunner

import supervisor.rundir as rundir
from supervisor.cli import app
from supervisor.config import space
from supervisor.config.warm_start import WarmSource
from supervisor.study import attrs, warm_start
from supervisor.study.storage import open_storage
from tests import faultkit
from tests.study.test_warm_start_resume import _source_run

SPACE = (
    f'study: new\nbenchmark: {{name: "{faultkit.TOY}"}}\nobjectives: [loss]\n'
    "params:\n  x: {type: float, low: -4, high: 0}\nbudget: {trials: 3}\n"
)


def _grow(run_dir: Path, more: int) -> None:
    """The source run resumed since: ``more`` trials of it finished."""
    study = optuna.load_study(
        study_name=run_dir.name, storage=open_storage(rundir.journal_url(run_dir))
    )
    dist = {"x": optuna.distributions.FloatDistribution(-4, 4)}
    for i in range(more):
        x = -0.5 - i / 10
        metrics = {attrs.METRICS: {"loss": x * x}}
        study.add_trial(create_trial(params={"x": x}, distributions=dist, value=x * x,
                                     user_attrs=metrics))  # fmt: skip


def _lines(sources: list[warm_start.Source]) -> list[str]:
    return [source.line() for source in sources]


def test_a_resume_says_which_sources_it_added_before_not_their_trials_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run ``old`` grew from 4 trials to 6 after this run had added its 4; a resume that
    added a new source said "Warm start: 6 trials from old" (and its dry run too): the
    study held 4 of them, and no more were added."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    old = _source_run(runs, "old", trials=4)
    _source_run(runs, "other", trials=3)
    (tmp_path / "new.yaml").write_text(SPACE + "warm_start: [old]\n")
    exp = space.load("new.yaml")
    (runs / "new").mkdir()
    study = optuna.create_study(
        study_name="new", storage=open_storage(rundir.journal_url(runs / "new"))
    )
    first = warm_start.plan(exp, runs, runs / "new")
    assert warm_start.apply(study, first) == 4
    assert _lines(first) == ["4 trials from old"]
    _grow(old, 2)
    result = CliRunner().invoke(app, ["search", "new.yaml", "--dry-run", "--warm-start", "other"])
    assert result.exit_code == 0, result.output
    warm = [line for line in result.output.splitlines() if line.startswith("Warm start:")]
    assert warm == [
        "Warm start: 4 trials from old, added at an earlier start; it has 6 now, the others"
        " are not added",
        "Warm start: 3 trials from other",
    ]
    # The resume itself, which adds ``other``: the same lines.
    later = replace(exp, warm_start=(*exp.warm_start, WarmSource("other")))
    sources = warm_start.plan(later, runs, runs / "new")
    assert warm_start.apply(study, sources) == 3
    assert [line.removeprefix("Warm start: ") for line in warm] == _lines(sources)
