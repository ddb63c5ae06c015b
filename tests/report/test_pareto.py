"""The Pareto report: the front, hypervolume, and a table that is study.best_trials."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from distributed import Client
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

import supervisor.rundir as rundir
from supervisor.cli import app
from supervisor.commands.search import write_report
from supervisor.config import space
from supervisor.report.campaign import Campaign
from supervisor.report.pareto import hypervolume, reference_point, render_pareto_report
from supervisor.study.driver import Driver
from supervisor.study.storage import open_storage
from tests.study.test_pruning import PARETO_TOY


def table_numbers(html: str) -> list[int]:
    """Trial numbers in the first column of the Pareto table."""
    body = html.split('<table class="data pareto">', 1)[1].split("</table>", 1)[0]
    return [int(n) for n in re.findall(r"<tr><td[^>]*>(\d+)</td>", body)]


def three_objective_study(name: str = "mo3") -> optuna.Study:
    study = optuna.create_study(study_name=name, directions=["maximize", "minimize", "minimize"])
    study.set_user_attr("supervisor:objectives", ["accuracy", "latency_ms", "n_params"])
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "units": IntDistribution(8, 64)}
    for i in range(30):
        units = 8 + (i * 7) % 57
        acc = 1 - 1 / units - 0.01 * (i % 4)
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                values=[acc, 0.01 * units + 0.002 * (i % 3), float(units * 100)],
                params={"lr": 10 ** (-4 + 0.1 * i), "units": units},
                distributions=dists,
                user_attrs={
                    "history": [
                        {"epoch": float(e), "accuracy": acc * (e + 1) / 3} for e in range(3)
                    ],
                    "metrics": {"node_seconds": 2.0 * units, "train_seconds": float(units)},
                },
            )
        )
    return study


def test_the_table_is_the_front_and_every_figure_is_there() -> None:
    study = three_objective_study("mo3 <b>bold</b>")
    html = render_pareto_report(study, {"command": "supervisor search x.yaml"})
    assert sorted(table_numbers(html)) == sorted(t.number for t in study.best_trials)
    # 3 pairs in 2-D, one 3-D view, the hypervolume history, one learning-curve figure
    assert html.count('class="figure"') == 6
    assert '"type":"scatter3d"' in html.replace(" ", "")
    assert "mo3 &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "node_seconds" in html  # a cost metric column of the table


def test_hypervolume_of_a_known_front() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    dist = {"x": FloatDistribution(0, 10)}
    for i, (a, b) in enumerate([(1, -3), (2, -2), (3, -1), (3.5, -3.5)]):
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE, values=[a, b], params={"x": i}, distributions=dist
            )
        )
    camp = Campaign.load(study)
    # Staircase of (1,3), (2,2), (3,1) under reference (4, 4) once b is minimized as -b.
    assert hypervolume(camp, [4.0, -4.0]) == pytest.approx(3 + 2 + 1)
    # Worst values (3.5, -3.5) pushed 10% of each range (2.5 and 2.5) further.
    assert reference_point(camp) == pytest.approx([3.75, -3.75])


def test_a_trial_with_an_infinite_value_is_not_the_front() -> None:
    """An infinite accuracy (a plain Optuna study, a broken metric) dominated every trial:
    the front was that trial alone and the hypervolume "inf", though the summary said
    non-finite values were left out and the figures omitted it."""
    study = three_objective_study()
    finite_front = sorted(t.number for t in study.best_trials)
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "units": IntDistribution(8, 64)}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            values=[float("inf"), 0.0, 0.0],
            params={"lr": 0.01, "units": 8},
            distributions=dists,
        )
    )
    html = render_pareto_report(study)
    assert sorted(table_numbers(html)) == finite_front
    hv = re.search(r"<th>hypervolume</th><td>([^<]*)</td>", html)
    assert hv is not None and float(hv.group(1)) > 0  # a number, not inf


def test_many_objectives_skip_the_exact_hypervolume_that_would_take_minutes() -> None:
    """Exact hypervolumes take time exponential in the objectives: the Pareto report of 5
    objectives with 250 Pareto-optimal trials took 20 s, of 3,000 trials (1,700 optimal)
    3.5 minutes, of 6 objectives far longer; `supervisor report` waited for it."""
    rng = np.random.default_rng(0)
    names = ["accuracy", "latency_ms", "n_params", "peak_memory_mb", "node_seconds"]
    study = optuna.create_study(study_name="many", directions=["minimize"] * 5)
    study.set_user_attr("supervisor:objectives", names)
    dist = {"x": FloatDistribution(0, 1)}
    for i in range(250):
        v = rng.random(5)
        values = [float(x) for x in v / np.linalg.norm(v)]  # all on a sphere: all optimal
        study.add_trial(
            create_trial(values=values, params={"x": i / 250}, distributions=dist)
        )  # fmt: skip
    started = time.perf_counter()
    html = render_pareto_report(study)
    assert time.perf_counter() - started < 10
    assert "<th>hypervolume</th><td>not computed: exact hypervolumes take time" in html
    assert "250 trials are Pareto-optimal over 5 (computed up to 200)" in html
    assert "Drawn for up to 4 objectives, not 5" in html


def test_a_single_objective_study_has_no_pareto_report() -> None:
    with pytest.raises(ValueError, match="one objective"):
        render_pareto_report(optuna.create_study())


def test_a_multi_objective_campaign_writes_a_linked_pareto_report(
    tmp_path: Path, threads_client: Client
) -> None:
    space_file = tmp_path / "pareto-toy.yaml"
    space_file.write_text(
        f'benchmark: "{PARETO_TOY}"\n'
        "objectives: [loss, {metric: latency_ms, direction: minimize}, size]\n"
        "params:\n  x: {type: float, low: 0, high: 4}\n  units: {type: int, low: 1, high: 8}\n"
        "budget: {trials: 10, epochs: 2}\nsampler: nsgaii\nseed: 1\n"
    )
    exp = space.load(space_file)
    run_dir = tmp_path / "runs" / exp.study_name
    run_dir.mkdir(parents=True)
    storage = open_storage(rundir.journal_url(run_dir))
    study = optuna.create_study(
        study_name=exp.study_name, storage=storage, directions=exp.directions
    )
    study.set_user_attr("supervisor:objectives", exp.metric_names)
    summary = Driver(exp, study, threads_client, slots=2).run()
    assert summary.finished == 10
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.values[1] == t.user_attrs["metrics"]["latency_ms"] > 0  # measured, an objective

    reports = tmp_path / "reports"
    campaign = write_report(study, reports, {"command": "test"}, run_dir)
    pareto = reports / f"{exp.study_name}-pareto.html"
    html = pareto.read_text()
    assert table_numbers(html) and sorted(table_numbers(html)) == sorted(
        t.number for t in study.best_trials
    )
    assert f'href="{exp.study_name}.html"' in html
    assert f'href="{exp.study_name}-pareto.html"' in campaign.read_text()

    # `supervisor report RUN` regenerates both.
    rundir.write_record(run_dir, rundir.RunRecord(exp.study_name, None, str(space_file), "x"))
    pareto.unlink()
    out = tmp_path / "again" / "r.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    again = out.parent / f"{exp.study_name}-pareto.html"
    assert sorted(table_numbers(again.read_text())) == sorted(table_numbers(html))


def test_a_report_view_serves_its_one_study_and_refuses_writes() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"], study_name="v")
    for x in (1.0, 2.0, 3.0):
        study.add_trial(
            create_trial(
                params={"x": x},
                distributions={"x": FloatDistribution(0, 4)},
                values=[x, -x],
            )
        )
    view = Campaign.load(study).view_of({0, 2})
    assert [t.number for t in view.trials] == [0, 2]  # numbered as in the study
    (summary,) = view._storage.get_all_studies()
    assert summary.study_name == "v" and summary.directions == study.directions
    with pytest.raises(RuntimeError, match="read-only"):
        view.set_user_attr("k", 1)
