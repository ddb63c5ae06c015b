"""The campaign report: sections, figures, caps at scale, benchmark panels, escaping."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial
from plotly.offline import get_plotlyjs

from supervisor.config import space
from supervisor.report.page import script_safe
from supervisor.report.search import write_search_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

HOSTILE = "</script><img src=x onerror=alert(1)>"
# Two hours ago: the running trial has run for about 1.5 h, as in a live campaign.
T0 = (dt.datetime.now() - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
TOY = "tests.toy_benchmark:ToyBenchmark"

DISTS = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "units": IntDistribution(8, 256),
    "act": CategoricalDistribution(["relu", "gelu"]),
}
CONFIG = {
    "study": "weather-search",
    "benchmark": {"name": TOY, "options": {"delay": 0.0, "offset": 2.0}},
    "objectives": [{"metric": "score", "direction": "maximize"}],
    "params": {"lr": "float", "units": "int", "act": "categorical"},
    "fixed": {"batch_size": 64},
    "sampler": {"name": "tpe", "options": {}},
    "budget": {"trials": 14, "epochs": 4, "timeout": None},
    "seed": 7,
}


def _trial(
    i: int,
    state: TrialState,
    params: dict[str, Any],
    values: list[float] | None = None,
    curve: list[float] | None = None,
    dists: dict[str, Any] | None = None,
    seconds: float | None = None,
    **user_attrs: Any,
) -> FrozenTrial:
    """A trial as the driver records it: two workers on two nodes, one after the other."""
    start = T0 + dt.timedelta(minutes=5 * (i // 2))
    seconds = 120.0 + i if seconds is None else seconds
    attrs: dict[str, Any] = {
        "worker": f"tcp://10.1.0.{i % 2}:40000",
        "hostname": f"node{i % 2:03d}",
        "started": start.timestamp(),
        **user_attrs,
    }
    if state.is_finished():
        attrs.update(finished=start.timestamp() + seconds, duration_s=seconds)
    if curve:
        attrs["history"] = [
            {"epoch": float(e), "score": v, "loss": 1.0 - v} for e, v in enumerate(curve)
        ]
    if values is not None:
        train = seconds - 1.0
        attrs["metrics"] = {"score": values[0], "train_seconds": train, "node_seconds": 4 * train}
    trial = create_trial(
        state=state,
        params=params,
        distributions=dists or DISTS,
        values=values,
        intermediate_values=dict(enumerate(curve or [])),
        user_attrs=attrs,
    )
    trial.datetime_start = start
    if state.is_finished():
        trial.datetime_complete = start + dt.timedelta(seconds=seconds)
    return trial


def _params(i: int) -> dict[str, Any]:
    return {"lr": 10 ** (-4 + 0.3 * i), "units": 16 * (i + 1), "act": ["relu", "gelu"][i % 2]}


def _single_study(artifacts: bool = False) -> optuna.Study:
    study = optuna.create_study(study_name="weather-search", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["score"])
    study.set_user_attr("supervisor:config", CONFIG)
    trials = []
    for i in range(8):
        acc = 0.5 + 0.05 * i
        curve = [acc * f for f in (0.4, 0.7, 0.9, 1.0)]
        # Trial 3 is a straggler: ten times as long as the others.
        seconds = 1300.0 if i == 3 else None
        saved = {"artifacts": f"trials/{i:06d}/artifacts.npz"} if artifacts else {}
        trials.append(
            _trial(i, TrialState.COMPLETE, _params(i), [acc], curve, seconds=seconds, **saved)
        )
    pruned = {"lr": 0.05, "units": 200, "act": "relu"}
    trials.append(_trial(8, TrialState.PRUNED, pruned, None, [0.1, 0.12]))
    trials.append(
        _trial(
            9,
            TrialState.FAIL,
            {"lr": 0.01, "units": 250, "act": "gelu"},
            error="CUDA out of memory while allocating 12.5 GiB",
            error_type="ResourceExhaustedError",
            failure="model",
            traceback="Traceback (most recent call last):\n  File model.py\nResourceExhausted",
        )
    )
    trials.append(
        _trial(
            10,
            TrialState.FAIL,
            {"lr": 0.02, "units": 64, "act": "gelu"},
            error="KilledWorker: worker tcp://10.1.0.0:40000 died",
            error_type="KilledWorker",
            failure="infrastructure",
        )
    )
    trials.append(_trial(11, TrialState.RUNNING, {"lr": 0.001, "units": 32, "act": "relu"}))
    study.add_trials(trials)
    study.enqueue_trial({"lr": 0.003, "units": 40, "act": "relu"})  # a WAITING trial
    return study


def _figures(html: str) -> dict[str, Any]:
    blocks = re.findall(
        r'<script type="application/json" data-figure="([^"]+)">(.*?)</script>', html, re.S
    )
    return {div: json.loads(data) for div, data in blocks}


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def _figures_in(html: str, anchor: str) -> list[dict[str, Any]]:
    section = _section(html, anchor)
    return [f for d, f in _figures(html).items() if f'data-figure="{d}"' in section]


def _array(value: Any) -> np.ndarray:
    """A trace array as plotly wrote it: a JSON list or a typed array ("bdata")."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(s) for s in shape.split(",")]) if shape else flat
    return np.asarray(value)


def _without_plotlyjs(html: str) -> str:
    start = html.index("/* plotly.js, inlined once */")
    return html[:start] + html[html.index("</script>", start) :]


def test_single_objective_report(tmp_path: Path) -> None:
    study = _single_study()
    out = tmp_path / "weather.html"
    run_info = {"command": "supervisor search search_spaces/weather.yaml", "started": 1.7e9}
    assert write_search_report(study, out, run_info) == out
    html = out.read_text(encoding="utf-8")

    # Self-contained: one inline copy of plotly.js, nothing fetched from the network.
    assert html.count(get_plotlyjs()[:300]) == 1
    assert html.count("/* plotly.js, inlined once */") == 1
    assert "<script src" not in html
    rest = _without_plotlyjs(html)
    # plotly.js 3.0 (plotly 6.0) itself holds 'src="https://unpkg.com/...' (map icons).
    assert 'src="http' not in rest
    assert "https://cdn" not in rest
    assert not re.search(r"<link[^>]+href=\"?https?:", rest)

    # Every figure is a div with a unique id and valid JSON data.
    figures = _figures(html)
    ids = re.findall(r'<div class="figure" id="([^"]+)">', html)
    assert len(ids) == len(set(ids)) == len(figures) == 8
    assert set(ids) == set(figures)
    for anchor in (
        "history",
        "parallel",
        "importance",
        "slice",
        "contour",
        "curves",
        "timeline",
        "resources",
    ):
        assert "data-figure=" in _section(html, anchor), anchor

    summary = _section(html, "summary")
    assert "weather-search" in summary
    assert "score (maximize)" in summary
    assert "Best trial: #7" in summary  # the highest score; its params are listed
    assert f"<td>{10 ** (-4 + 0.3 * 7)!r}</td>" in summary
    assert "<td>128</td>" in summary
    assert "supervisor search search_spaces/weather.yaml" in summary
    assert "Experiment configuration" in summary
    counts = re.findall(r'<td class="num">(\d+)</td>', summary)[:6]
    assert counts == ["8", "1", "2", "1", "1", "13"]  # COMPLETE PRUNED FAIL RUNNING WAITING
    # What ran, where, how long.
    assert "<th>nodes</th><td>2: node000, node001</td>" in summary
    assert "<th>workers</th><td>2</td>" in summary
    assert "10 of 14 trials finished" in summary  # 8 complete, 1 pruned, 1 model failure
    assert "so far (trials are running)" in summary
    assert "1 model, 1 infrastructure" in summary

    best = _section(html, "best")
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td>", best)
    assert rows == ["7", "6", "5", "4", "3", "2", "1", "0"]

    failures = _section(html, "failures")
    assert "CUDA out of memory while allocating 12.5 GiB" in failures
    assert "ResourceExhaustedError" in failures
    assert "infrastructure" in failures
    assert "tcp://10.1.0.1:40000" in failures
    assert "<summary>traceback</summary>" in failures and "ResourceExhausted" in failures


def test_rerun_command_runs_the_best_configuration(tmp_path: Path) -> None:
    """The command in the summary writes a valid space file: the best params, one trial."""
    html = write_search_report(_single_study(), tmp_path / "r.html").read_text(encoding="utf-8")
    block = re.search(r'<pre class="command">(.*?)</pre>', _section(html, "summary"), re.S)
    assert block
    import html as html_lib

    command = html_lib.unescape(block.group(1))
    lines = command.splitlines()
    assert lines[0] == "cat > weather-search-trial-7.yaml <<'EOF'"
    assert lines[-2:] == ["EOF", "supervisor search weather-search-trial-7.yaml"]
    # Run the shell part for real: it must write the file the last line searches.
    subprocess.run(["sh", "-c", "\n".join(lines[:-1])], cwd=tmp_path, check=True)
    exp = space.load(tmp_path / "weather-search-trial-7.yaml")
    assert exp.study_name == "weather-search-trial-7"
    assert exp.params == ()
    assert exp.fixed == {"batch_size": 64, **_params(7)}
    assert exp.budget.trials == 1 and exp.budget.epochs == 4
    assert exp.benchmark_target == TOY and exp.options == {"delay": 0.0, "offset": 2.0}
    assert exp.seed == 7 and exp.metric_names == ["score"]


def test_learning_curves_come_from_the_history(tmp_path: Path) -> None:
    html = write_search_report(_single_study(), tmp_path / "r.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "curves")
    traces = {t["name"]: t for t in fig["data"]}
    # One trace per state (curves separated by gaps), and the best trials by name.
    complete, pruned = traces["complete"], traces["pruned"]
    assert np.isnan(_array(complete["y"])).sum() == 8  # 8 curves, each ended by a gap
    assert np.count_nonzero(~np.isnan(_array(pruned["y"]))) == 2
    assert [n for n in traces if n.startswith("trial #")][:3] == [
        "trial #7",
        "trial #6",
        "trial #5",
    ]
    assert list(_array(traces["trial #7"]["y"])) == pytest.approx([0.34, 0.595, 0.765, 0.85])

    # Multi-objective studies have no Optuna intermediate values: the history has them.
    study = optuna.create_study(study_name="mo", directions=["maximize", "minimize"])
    study.set_user_attr("supervisor:objectives", ["score", "node_seconds"])
    trials = [
        _trial(i, TrialState.COMPLETE, _params(i), [0.5 + 0.04 * i, 10.0 * i], [0.2, 0.4 + i / 20])
        for i in range(4)
    ]
    for t in trials:
        t.intermediate_values = {}
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "mo.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "curves")  # score is in the history, node_seconds is not
    assert fig["layout"]["title"]["text"] == "Learning curves: score"


def test_long_learning_curves_are_thinned_in_the_background(tmp_path: Path) -> None:
    """The grey curves were drawn at every epoch: 2,000 curves of 300 epochs made 8 MB
    per learning-curve figure (one per objective). They are thinned to a budget of
    points; the best trials' curves, in colour, keep every epoch."""
    study = optuna.create_study(study_name="long", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["score"])
    epochs, n = 1500, 200
    ramp = np.linspace(0.1, 1.0, epochs)
    study.add_trials(
        [
            _trial(i, TrialState.COMPLETE, _params(i % 8), [0.5 + i / 1000],
                   list(ramp * (0.5 + i / 1000)), seconds=10.0)
            for i in range(n)
        ]
    )  # fmt: skip
    html = write_search_report(study, tmp_path / "long.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "curves")
    traces = {t["name"]: t for t in fig["data"]}
    grey = _array(traces["complete"]["y"])
    assert np.isnan(grey).sum() == n  # every curve is there ...
    assert np.count_nonzero(~np.isnan(grey)) <= 200_000  # ... at fewer epochs (was 300,000)
    assert grey[0] == pytest.approx(0.05) and grey[~np.isnan(grey)].max() == pytest.approx(0.699)
    best = _array(traces[f"trial #{n - 1}"]["y"])
    assert len(best) == epochs


def test_worker_timeline_and_resource_use(tmp_path: Path) -> None:
    study = _single_study()
    html = write_search_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "timeline")
    names = [t["name"] for t in fig["data"]]
    assert names == [
        "COMPLETE (8)",
        "PRUNED (1)",
        "FAIL (model) (1)",
        "FAIL (infrastructure) (1)",
        "RUNNING (1)",
    ]
    # Rows are the workers; each bar starts when its trial started on that worker.
    assert fig["layout"]["yaxis"]["ticktext"] == ["tcp://10.1.0.0:40000", "tcp://10.1.0.1:40000"]
    complete = next(t for t in fig["data"] if t["name"].startswith("COMPLETE"))
    numbers = _array(complete["customdata"])[:, 0].astype(int).tolist()
    rows = _array(complete["y"]).astype(int).tolist()
    assert rows == [n % 2 for n in numbers]
    durations = dict(zip(numbers, _array(complete["x"]) / 1000.0, strict=True))
    assert durations[3] == pytest.approx(1300.0) and durations[2] == pytest.approx(122.0)
    base = dict(zip(numbers, _array(complete["base"]), strict=True))
    assert base[2] - base[0] == pytest.approx(5 * 60 * 1000.0)  # local wall-clock ms
    # The running trial reaches up to now, so it is longer than any finished one.
    running = next(t for t in fig["data"] if t["name"].startswith("RUNNING"))
    assert _array(running["x"])[0] / 1000.0 > 3600

    timeline = _section(html, "timeline")
    assert "stragglers took more than 3 x the median" in timeline
    straggler = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>(\w+)</td>", timeline)
    assert straggler[:2] == [("11", "RUNNING"), ("3", "COMPLETE")]
    assert "<th>workers</th><td>2</td>" in timeline

    resources = _section(html, "resources")  # the cost in allocation units
    # No provenance: 4 cores per trial from node_seconds / train_seconds, no node size.
    assert "core-hours only" in resources
    complete_seconds = sum(120.0 + i for i in range(8) if i != 3) + 1300.0
    row = re.search(r"<tr><td>complete</td><td class=\"num\">8</td>.*?</tr>", resources)
    assert row and f"{4 * complete_seconds / 3600:,.3f}" in row.group(0)


def test_trials_no_worker_ran_have_no_bar_and_no_say_in_the_stragglers(tmp_path: Path) -> None:
    """Warm-start trials and twins told a result were never run here: a study of mostly
    those draws the trials it ran (it once divided by their median time of 0)."""
    study = optuna.create_study(study_name="warm", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["score"])
    config = {"benchmark": {"name": "toy"}, "objectives": ["score"], "budget": {"epochs": 1}}
    study.set_user_attr("supervisor:config", config)
    told = [
        _trial(i, state, _params(i % 6), [0.1 * i] if state == TrialState.COMPLETE else None,
               seconds=0.0, warm_start=f"old#{i}")
        for i, state in enumerate([TrialState.COMPLETE] * 6 + [TrialState.FAIL] * 3)
    ]  # fmt: skip
    ran = [_trial(i, TrialState.COMPLETE, _params(i - 9), [0.5]) for i in range(9, 12)]
    twin = _trial(12, TrialState.COMPLETE, _params(0), [0.5], seconds=0.0, duplicate_of=9)
    study.add_trials([*told, *ran, twin])
    html = write_search_report(study, tmp_path / "w.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "timeline")
    drawn = sorted(n for t in fig["data"] for n in _array(t["customdata"])[:, 0].astype(int))
    assert drawn == [9, 10, 11]
    # The summary's trial time is that of the 3 trials run here, and the best trial, told
    # from the earlier run, is not presented as one of this campaign's (its seed, 0 s).
    assert "over 3 trials" in html
    assert "trained in old#5, not in this campaign" in html
    assert "the trial itself was trained in old#5, with that run" in html


def test_trials_of_a_dead_driver_are_drawn_as_orphans(tmp_path: Path) -> None:
    """A RUNNING trial whose driver died is not 'running until now': its bar stops at the
    campaign's last sign of life, and the summary says so."""
    study = optuna.create_study(study_name="orphans", direction="maximize")
    gone = "node9:4242:dead"
    beat = (T0 + dt.timedelta(minutes=30)).timestamp()
    study.set_user_attr("supervisor:heartbeat:" + gone, beat)
    params = {"lr": 0.01, "units": 8, "act": "relu"}
    study.add_trials(
        [
            _trial(0, TrialState.COMPLETE, params, [0.5]),
            _trial(1, TrialState.RUNNING, params, **{"supervisor:driver": gone}),
        ]
    )
    html = write_search_report(study, tmp_path / "o.html").read_text(encoding="utf-8")
    (fig,) = _figures_in(html, "timeline")
    orphan = next(t for t in fig["data"] if t["name"] == "RUNNING (driver gone) (1)")
    assert _array(orphan["x"])[0] / 1000.0 == pytest.approx(30 * 60.0)  # T0 to the last beat
    assert "RUNNING in storage whose driver is gone: 1." in _section(html, "timeline")
    summary = _section(html, "summary")
    assert "<th>orphaned</th>" in summary and "so far" not in summary


def test_multi_objective_report_has_pareto_front(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="mo", directions=["maximize", "minimize"])
    study.set_user_attr("supervisor:objectives", ["val_accuracy", "node_seconds"])
    trials = []
    for i in range(10):
        params = _params(i)
        trials.append(_trial(i, TrialState.COMPLETE, params, [0.5 + 0.04 * i, 10.0 * (i % 4)]))
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "mo.html").read_text(encoding="utf-8")

    pareto = _section(html, "pareto")
    assert "data-figure=" in pareto
    assert "Pareto-optimal trials" in _section(html, "summary")
    pareto_numbers = {t.number for t in study.best_trials}
    assert len(pareto_numbers) >= 2
    table = _section(html, "summary").split("Pareto-optimal trials")[1]
    listed = re.findall(r"<tr><td class=\"num\">(\d+)</td>", table)
    assert {int(n) for n in listed} == pareto_numbers
    assert "node_seconds (minimize)" in html
    # One history and one importance figure per objective; slice and contour for the first.
    assert _section(html, "history").count("data-figure=") == 2
    assert _section(html, "importance").count("data-figure=") == 2
    assert _section(html, "slice").count("data-figure=") == 1
    assert _section(html, "contour").count("data-figure=") == 1


def test_slice_and_contour_show_the_most_important_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``p3`` drives the score: the slice plot (capped at 2 parameters here) keeps it,
    and the contour plots pair it with the next two."""
    from supervisor.report import optuna_plots

    monkeypatch.setattr(optuna_plots, "SLICE_PARAMS", 2)
    dists = {f"p{k}": FloatDistribution(0.0, 1.0) for k in range(5)}
    study = optuna.create_study(study_name="imp", direction="maximize")
    rng = np.random.default_rng(0)
    trials = []
    for i in range(40):
        params = {name: float(rng.random()) for name in dists}
        value = params["p3"] * 10 + params["p1"]
        trials.append(_trial(i, TrialState.COMPLETE, params, [value], dists=dists))
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "imp.html").read_text(encoding="utf-8")
    (slice_fig,) = _figures_in(html, "slice")
    layout = slice_fig["layout"]
    titles = {layout[k]["title"]["text"] for k in layout if k.startswith("xaxis")}
    assert titles == {"p1", "p3"}  # Optuna orders them by name
    assert "The 2 most important of 5 parameters" in _section(html, "slice")
    assert "the most important parameters: p3, p1, " in _section(html, "contour")
    (contour,) = _figures_in(html, "contour")
    assert sum(t["type"] == "contour" for t in contour["data"]) == 6  # 3 x 3, off-diagonal


@pytest.mark.parametrize("n", [20, 150])
def test_an_objective_every_trial_shares_has_no_importances(tmp_path: Path, n: int) -> None:
    """A campaign whose model always scores the same (a broken data pipeline): fANOVA's
    'RuntimeError: Encountered zero total variance in all trees' was the section's text
    (up to 100 trials), and PED-ANOVA drew equal bars for every parameter (beyond)."""
    study = optuna.create_study(study_name="flat", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["score"])
    study.add_trials(
        [_trial(i, TrialState.COMPLETE, _params(i % 8), [0.5], seconds=10.0) for i in range(n)]
    )
    html = write_search_report(study, tmp_path / "flat.html").read_text(encoding="utf-8")
    importance = _section(html, "importance")
    assert f"All {n} complete trials have score 0.5: nothing to explain." in importance
    assert "Could not draw" not in importance and "data-figure=" not in importance
    assert "data-figure=" in _section(html, "slice")  # the other figures are drawn


def test_a_parameter_whose_range_was_widened_keeps_its_importance(tmp_path: Path) -> None:
    """A resume widened lr and units: Optuna's importances keep only parameters every
    trial shares the distribution of, so the figure gave the irrelevant 'act' all of the
    importance (1.0), lr and units none, and slice and contour took 'act' first."""
    study = optuna.create_study(study_name="widened", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["score"])
    trials = []
    for i in range(40):
        before = i < 20
        dists = {
            "lr": FloatDistribution(1e-4, 1e-2, log=True)
            if before
            else FloatDistribution(1e-5, 1e-1, log=True),
            "units": IntDistribution(8, 64) if before else IntDistribution(4, 128),
            "act": CategoricalDistribution(["relu", "gelu"]),
        }
        k = i % 20
        lr = 10 ** (-4 + k / 10) if before else 10 ** (-5 + k / 5)
        units = 8 + 2 * k if before else 4 + 6 * k
        params = {"lr": lr, "units": units, "act": ["relu", "gelu"][i % 2]}
        value = (np.log10(lr) + 3) ** 2 + units / 100
        trials.append(_trial(i, TrialState.COMPLETE, params, [value], dists=dists, seconds=5.0))
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "widened.html").read_text(encoding="utf-8")
    (figure,) = _figures_in(html, "importance")
    names = list(figure["data"][0]["y"])  # least important first
    assert sorted(names) == ["act", "lr", "units"] and names[0] == "act"
    assert "most important parameters: act" not in _section(html, "contour")


def test_the_importances_name_the_conditional_parameters_they_leave_out(tmp_path: Path) -> None:
    """Optuna rates only parameters every trial has: a conditional one (momentum, with
    one activation only) was missing from the figure without a word, read as unimportant."""
    study = optuna.create_study(study_name="conditional", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["score"])
    trials = []
    for i in range(10):
        params, dists = _params(i), dict(DISTS)
        if params["act"] == "relu":
            params["momentum"] = 0.05 * i
            dists["momentum"] = FloatDistribution(0.0, 0.95)
        trials.append(_trial(i, TrialState.COMPLETE, params, [0.1 * i], dists=dists))
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "c.html").read_text(encoding="utf-8")
    importance = _section(html, "importance")
    assert "Not rated, set in some trials only: momentum." in importance
    (figure,) = _figures_in(html, "importance")
    assert "momentum" not in figure["data"][0]["y"]


def test_large_studies_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures draw a sample beyond their caps (here made small), keeping trial numbers."""
    from supervisor.report import curves, optuna_plots, timeline

    monkeypatch.setattr(optuna_plots, "PARALLEL_TRIALS", 10)
    monkeypatch.setattr(optuna_plots, "PARETO_PLOT_TRIALS", 15)
    monkeypatch.setattr(optuna_plots, "SLICE_TRIALS", 12)
    monkeypatch.setattr(optuna_plots, "CONTOUR_TRIALS", 11)
    monkeypatch.setattr(timeline, "TIMELINE_TRIALS", 20)
    monkeypatch.setattr(curves, "BACKGROUND_TRIALS", 7)
    study = optuna.create_study(study_name="big", directions=["maximize", "minimize"])
    config = {**CONFIG, "sampler": {"name": "tpe", "options": {"history": 50}}}
    study.set_user_attr("supervisor:config", config)
    trials = [
        _trial(
            i,
            TrialState.COMPLETE,
            _params(i % 9),
            [(i * 37 % 60) / 60, (i * 11 % 60) / 60],
            curve=[0.1, 0.2],
        )
        for i in range(60)
    ]
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "big.html").read_text(encoding="utf-8")

    (parallel,) = _figures_in(html, "parallel")
    lines = [t for t in parallel["data"] if t.get("mode") == "lines"]
    assert len(lines) == 10
    assert "10 of 60 complete trials" in _section(html, "parallel")
    (pareto,) = _figures_in(html, "pareto")
    hovers = [text for t in pareto["data"] for text in t.get("text") or []]
    drawn = {json.loads(text.replace("<br>", "\n"))["number"] for text in hovers}
    assert len(drawn) == 15
    assert {t.number for t in study.best_trials} <= drawn  # the front, under its own numbers
    (slice_fig,) = _figures_in(html, "slice")
    assert {len(_array(t["x"])) for t in slice_fig["data"]} == {12}
    assert "11 of 60 complete trials" in _section(html, "contour")
    (timeline_fig,) = _figures_in(html, "timeline")
    assert sum(len(_array(t["y"])) for t in timeline_fig["data"]) == 20
    assert "The 20 most recent of 60 trials" in _section(html, "timeline")
    curves_fig = _figures_in(html, "curves")[0]
    assert curves_fig["data"][0]["name"] == "complete (7 of 60)"
    assert np.isnan(_array(curves_fig["data"][0]["y"])).sum() == 7
    # So does the sampler past its history limit (supervisor.config.history).
    assert "tpe: models a view of 50 of the 60 finished trials" in html


def test_the_sampler_row_says_when_the_sampler_models_a_view_of_the_study() -> None:
    from supervisor.report.summary import sampler_text

    assert sampler_text({"name": "tpe", "options": {}}, 300) == "tpe"  # all of them
    assert "a view of 300 of the 301 finished" in sampler_text({"name": "tpe", "options": {}}, 301)
    assert "a view of 200 of the 1000 finished" in sampler_text({"name": "gp"}, 1000)
    assert sampler_text({"name": "tpe", "options": {"history": None}}, 10**5) == "tpe"
    assert sampler_text({"name": "cmaes", "options": {}}, 10**5) == "cmaes"  # its own window
    assert sampler_text({"name": "tpe", "options": {"history": "many"}}, 10**5) == "tpe"


def test_long_numeric_arrays_are_typed_arrays(tmp_path: Path) -> None:
    """Long numeric data goes out as base64 typed arrays (half the size of JSON text)."""
    from supervisor.report.page import _compact

    trace = {
        "x": list(range(100)),
        "y": ["a"] * 100,
        "z": [[1.5, None] * 40] * 3,
        "customdata": [[1, "a"]] * 70,
        "marker": {"color": list(range(100))},
    }
    out = _compact(trace)
    assert out["x"].dtype == np.float64 and list(out["x"]) == list(range(100))
    assert out["z"].shape == (3, 80) and np.isnan(out["z"][0, 1]) and out["z"][0, 0] == 1.5
    assert out["y"] == ["a"] * 100 and out["customdata"] == [[1, "a"]] * 70
    assert _compact({"x": [True] * 100})["x"] == [True] * 100  # booleans are categories

    html = write_search_report(_single_study(), tmp_path / "r.html").read_text(encoding="utf-8")
    (contour,) = _figures_in(html, "contour")
    grids = [t["z"] for t in contour["data"] if t["type"] == "contour"]
    assert grids and all(g["dtype"] == "f4" for g in grids)


def test_related_reports_are_linked(tmp_path: Path) -> None:
    from supervisor.report.search import related_reports

    out = tmp_path / "weather-search.html"
    assert related_reports(out, "weather-search") == []
    (tmp_path / "weather-search-uq.html").write_text("<html></html>")
    assert related_reports(out, "weather-search") == [
        ("Uncertainty (ensemble) report", "weather-search-uq.html")
    ]
    (tmp_path / "weather-search-pareto.html").write_text("<html></html>")
    (tmp_path / "other-pareto.html").write_text("<html></html>")
    html = write_search_report(_single_study(), out).read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', _section(html, "summary"))
    assert links == ["weather-search-pareto.html", "weather-search-uq.html"]
    # A name with characters that mean something in a URL is linked as its file.
    assert related_reports(tmp_path / "x.html", "a b#c") == []
    (tmp_path / "a b#c-pareto.html").write_text("<html></html>")
    assert related_reports(tmp_path / "x.html", "a b#c") == [
        ("Pareto report", "a%20b%23c-pareto.html")
    ]


# -- benchmark panels from artifacts -------------------------------------------------------


def _with_artifacts(tmp_path: Path, arrays: dict[str, Any], best_has: bool = True) -> Path:
    """A run directory whose best trials saved ``arrays`` the way the worker does."""
    run_dir = tmp_path / "run"
    for number in (7, 6):
        if number == 7 and not best_has:
            continue
        path = run_dir / f"trials/{number:06d}/artifacts.npz"
        path.parent.mkdir(parents=True)
        np.savez(path, **arrays)
    return run_dir


def _blocks(groups: int = 3, size: int = 4, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """A confusion matrix of ``groups`` groups of classes confused within the group only,
    with the classes shuffled: clustering must bring each group back together."""
    rng = np.random.default_rng(seed)
    n = groups * size
    group = np.repeat(np.arange(groups), size)
    matrix = np.where(group[:, None] == group[None, :], 5, 0) + np.diag(np.full(n, 40))
    matrix = matrix + rng.integers(0, 2, size=(n, n)) * (group[:, None] == group[None, :])
    perm = rng.permutation(n)
    return matrix[np.ix_(perm, perm)], group[perm].tolist()


def _contiguous(order: list[int], group: list[int]) -> bool:
    seq = [group[i] for i in order]
    changes = sum(1 for a, b in itertools.pairwise(seq) if a != b)
    return changes == len(set(group)) - 1


def test_confusion_matrix_is_clustered(monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor.report.speech import cluster_order

    matrix, group = _blocks()
    order, method = cluster_order(matrix)
    assert sorted(order) == list(range(len(group)))
    assert _contiguous(order, group) and "hierarchical clustering" in method
    # Without scipy: the documented numpy ordering does it too.
    monkeypatch.setitem(sys.modules, "scipy.cluster.hierarchy", None)
    order, method = cluster_order(matrix)
    assert sorted(order) == list(range(len(group)))
    assert _contiguous(order, group) and "spectral" in method


def test_speech_panel(tmp_path: Path) -> None:
    matrix, group = _blocks(groups=3, size=19)  # 57 classes, as the speech decoder has
    labels = [f"{c}{v}" for c in "bdgptkfvszmnwjlrhyCSTxq"[:19] for v in "aiu"]
    # The names benchmarks_sci.speech saves them under.
    arrays = {"confusion_matrix": matrix, "class_names": np.array(labels)}
    run_dir = _with_artifacts(tmp_path, arrays)
    study = _single_study(artifacts=True)
    html = write_search_report(study, tmp_path / "r.html", run_dir=run_dir).read_text(
        encoding="utf-8"
    )
    section = _section(html, "confusion")
    assert "Trial #7 (the best)" in section
    assert "57 classes" in section and "hierarchical clustering" in section
    (fig,) = _figures_in(html, "confusion")
    (heat,) = fig["data"]
    order = [labels.index(x) for x in heat["x"]]
    assert heat["y"] == heat["x"] and sorted(order) == list(range(57))
    assert _contiguous(order, group)
    z = _array(heat["z"])
    assert z.shape == (57, 57) and np.allclose(z.sum(axis=1), 1.0)  # rows are shares
    assert "maps" not in re.findall(r'<section id="([^"]+)"', html)


def test_gan_and_basecaller_panels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    k = np.arange(1.0, 33.0)
    edges = np.linspace(-1.0, 1.0, 21)
    arrays = {  # the names benchmarks_sci.cosmogan saves them under
        "samples": rng.random((6, 256, 256)).astype(np.float32),
        "validation_samples": rng.random((4, 256, 256)).astype(np.float32),
        "ps_k": k,
        "ps_generated": np.stack([k**-2 * (1 + 0.1 * rng.random(k.size)) for _ in range(5)]),
        "ps_validation": k**-2,
        "hist_edges": edges,
        "hist_generated": np.full(20, 0.5),
        "hist_validation": np.linspace(0.1, 0.9, 20),
        "signal": rng.normal(size=7000).astype(np.float32),
        "reference": np.array("ACGTACGTTTGACCA"),
        "decoded": np.array([0, 1, 2, 3, 0, 1, 3, 3, 3, 2, 0, 1, 1, 0]),  # ACGTACTTTGACCA
        "extra": np.zeros((2, 3)),
    }
    run_dir = _with_artifacts(tmp_path, arrays, best_has=False)
    study = _single_study(artifacts=True)
    html = write_search_report(study, tmp_path / "r.html", run_dir=run_dir).read_text(
        encoding="utf-8"
    )
    maps = _section(html, "maps")
    assert "Trial #6 (the best with artifacts; #7 has none)" in maps
    assert "4 of 6 generated maps (256 x 256, shown at 128 x 128) over held-out ones" in maps
    map_fig, spectra, histogram = _figures_in(html, "maps")
    assert [_array(t["z"]).shape for t in map_fig["data"]] == [(128, 128)] * 8
    assert np.allclose(_array(map_fig["data"][0]["z"])[0, 0], arrays["samples"][0, :2, :2].mean())
    held = _array(map_fig["data"][4]["z"])[0, 0]
    assert np.allclose(held, arrays["validation_samples"][0, :2, :2].mean())
    names = [t["name"] for t in spectra["data"]]
    assert names == ["generated: 16-84% of 5 maps", "generated", "held-out"]
    # An 8-digit hex colour made plotly 6 refuse the band: the panel was not drawn.
    assert spectra["data"][0]["fillcolor"] == "rgba(207,34,46,0.2)"
    assert spectra["layout"]["xaxis"]["type"] == "log"
    generated, validation = histogram["data"]
    assert list(_array(generated["x"])) == pytest.approx(list(edges))
    assert _array(validation["y"])[-2:] == pytest.approx([0.9, 0.9])  # the last bin, held

    squiggle = _section(html, "squiggle")
    (signal_fig,) = _figures_in(html, "squiggle")
    assert len(_array(signal_fig["data"][0]["y"])) == 5000
    assert "the first 5000 of 7000" in squiggle
    # ACGTACGTTTGACCA against ACGTACTTTGACCA: one base (G) missing from the decoded read.
    assert "14 bases match in order (93.3% of the reference)" in squiggle
    assert "ref      0 ACGTAC<mark>G</mark>TTTGACCA" in squiggle
    assert "out      0 ACGTAC<mark>-</mark>TTTGACCA" in squiggle
    other = _section(html, "artifacts")
    assert "extra" in other and "float64 [2, 3]" in other


def test_artifacts_outside_the_run_dir_or_broken_are_ignored(tmp_path: Path) -> None:
    from supervisor.report.artifacts import load

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    np.savez(tmp_path / "outside.npz", confusion=np.eye(3))
    assert load(run_dir, "../outside.npz") is None
    assert load(run_dir, str(tmp_path / "outside.npz")) is None
    (run_dir / "broken.npz").write_bytes(b"not a zip")
    assert load(run_dir, "broken.npz") is None
    # Object arrays need pickle, which would run code from the file: refused.
    np.savez(run_dir / "pickled.npz", confusion=np.array([{"a": 1}], dtype=object))
    assert load(run_dir, "pickled.npz") is None
    np.savez(run_dir / "ok.npz", confusion=np.eye(3))
    loaded = load(run_dir, "ok.npz")
    assert loaded is not None and np.array_equal(loaded["confusion"], np.eye(3))
    # No run directory, no panels; the rest of the report is there.
    html = write_search_report(_single_study(artifacts=True), tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert 'id="confusion"' not in html and 'id="summary"' in html


# -- robustness ------------------------------------------------------------------------------


def test_study_without_complete_trials_renders(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="nothing-yet")
    study.add_trial(
        _trial(0, TrialState.FAIL, {"lr": 0.01, "units": 8, "act": "relu"}, error="boom")
    )
    study.add_trial(_trial(1, TrialState.RUNNING, {"lr": 0.02, "units": 9, "act": "relu"}))
    html = write_search_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    for anchor in ("best", "history", "parallel", "importance", "slice", "contour"):
        text = _section(html, anchor)
        assert "No complete trial yet" in text or "at least 2" in text, anchor
    assert "boom" in _section(html, "failures")
    assert "data-figure=" in _section(html, "timeline")
    assert html.rstrip().endswith("</html>")

    empty = optuna.create_study(study_name="empty")
    html = write_search_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No trial has started yet" in html
    assert "data-figure=" not in html
    assert get_plotlyjs()[:300] not in html  # no figure, no 4.8 MB library


def test_plain_optuna_study(tmp_path: Path) -> None:
    """No supervisor attributes: names fall back, curves come from intermediate values."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        for step in range(3):
            trial.report(x * step, step)
        if trial.number == 3:
            raise ValueError("bad <b>x</b>")
        return x**2

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=6, catch=(ValueError,))
    html = write_search_report(study, tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "objective 0 (minimize)" in html
    assert '<td class="num">3</td>' in _section(html, "failures")
    assert "Intermediate values reported to Optuna" in _section(html, "curves")
    assert "data-figure=" in _section(html, "curves")
    assert "Run trial" not in html  # no configuration to build a rerun from
    assert "Contour plots need two parameters" in _section(html, "contour")


def test_a_multi_objective_study_with_no_feasible_trial(tmp_path: Path) -> None:
    """Optuna's Pareto front holds feasible trials only: a plain Optuna study whose
    every trial violates its constraints had none, and the report died with IndexError."""
    study = optuna.create_study(study_name="infeasible", directions=["minimize"] * 2)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("memory", 1.0 + x)  # > 0: violated
        return x, 1 - x

    study.optimize(objective, n_trials=6)
    assert study.best_trials == []
    html = write_search_report(study, tmp_path / "i.html").read_text(encoding="utf-8")
    summary = _section(html, "summary")
    assert "None of the 6 complete trials keeps the constraints." in summary


def test_the_failure_kinds_beyond_the_table_are_counted(tmp_path: Path) -> None:
    """The table of failure kinds showed the 20 most frequent and dropped the rest
    without a word: its counts summed to fewer than the failed trials."""
    study = optuna.create_study(study_name="errors", direction="maximize")
    trials = [
        _trial(i, TrialState.FAIL, _params(i % 8), failure="model", error=f"e{i}",
               error_type=f"Error{i % 25}", seconds=5.0)
        for i in range(30)
    ]  # fmt: skip
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "e.html").read_text(encoding="utf-8")
    kinds = _section(html, "failures").split("</table>")[0]
    # 25 error types: 5 of them twice; the 20 listed hold 25 trials, 5 types 5 more.
    assert '<td>…</td><td>5 more error types</td><td class="num">5</td>' in kinds


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    name = f"study{HOSTILE}"
    param = f"p{HOSTILE}"
    dists = {
        param: CategoricalDistribution(["safe", HOSTILE]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    study = optuna.create_study(study_name=name, direction="minimize")
    study.set_user_attr("supervisor:objectives", [f"loss{HOSTILE}"])
    study.set_user_attr("supervisor:config", {**CONFIG, "note": HOSTILE, "seed": HOSTILE})
    trials = [
        _trial(
            i,
            TrialState.COMPLETE,
            {param: [HOSTILE, "safe"][i % 2], "lr": 10 ** (-3 + 0.3 * i)},
            [1.0 / (i + 1)],
            [1.0, 1.0 / (i + 1)],
            dists=dists,
            worker=f"tcp://{HOSTILE}",
            hostname=HOSTILE,
            artifacts="a.npz",
        )
        for i in range(4)
    ]
    trials.append(
        _trial(
            4,
            TrialState.FAIL,
            {param: HOSTILE, "lr": 0.01},
            dists=dists,
            error=f"RuntimeError: {HOSTILE}",
            error_type=HOSTILE,
            failure="model",
            traceback=HOSTILE,
        )
    )
    study.add_trials(trials)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    np.savez(
        run_dir / "a.npz",
        confusion=np.eye(3) * 5 + 1,
        labels=np.array([HOSTILE, "b", "c"]),
        signal=np.zeros(10),
        reference=np.array(HOSTILE),
        decoded=np.array("ACGT"),
    )
    html = write_search_report(
        study, tmp_path / "x.html", {HOSTILE: HOSTILE}, run_dir=run_dir
    ).read_text(encoding="utf-8")

    assert "<img src=x onerror=" not in html
    assert "</script><img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    # Scripts end only where they should: one close tag per open tag.
    assert html.count("</script>") == len(re.findall(r"<script[ >]", html))
    # The text survives inside the figure data (escaped for the script and for plotly's
    # label markup, not dropped).
    shown = HOSTILE.replace("<", "&lt;").replace(">", "&gt;")
    assert any(shown in json.dumps(fig, ensure_ascii=False) for fig in _figures(html).values())
    assert "data-figure=" in _section(html, "parallel")
    assert "data-figure=" in _section(html, "confusion")
    assert "data-figure=" in _section(html, "squiggle")


def test_script_safe_json() -> None:
    text = json.dumps({"a": "</script><!-- & \u2028"})
    safe = script_safe(text)
    assert not re.search("[<>&\u2028]", safe)
    assert json.loads(safe) == json.loads(text)


def test_atomic_write_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = optuna.create_study(study_name="atomic")
    study.add_trial(_trial(0, TrialState.COMPLETE, {"lr": 0.01, "units": 8, "act": "relu"}, [0.3]))
    out = tmp_path / "atomic.html"
    write_search_report(study, out)
    write_search_report(study, out)  # replaces the report in place
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.html"]
    before = out.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("supervisor.atomic.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_search_report(study, out)
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.html"]
    assert out.read_bytes() == before


def test_report_command_regenerates_from_storage(tmp_path: Path) -> None:
    """``supervisor report RUN`` on a run directory, with the panels of its artifacts."""
    from typer.testing import CliRunner

    from supervisor.cli import app
    from supervisor.perf.report_scale import make_campaign

    run_dir = tmp_path / "runs" / "scale"
    make_campaign(run_dir, 120)
    out = tmp_path / "reports" / "scale.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)"', html)
    for anchor in ("summary", "timeline", "resources", "failures", "confusion", "maps"):
        assert anchor in sections, anchor
    assert "squiggle" in sections
    assert "120 trials" in html


def test_import_is_cheap() -> None:
    """The CLI imports supervisor.report at start-up; plotly and Optuna load only on use."""
    code = (
        "import sys, supervisor.report; "
        "heavy = [m for m in ('optuna', 'plotly', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_durations_read_the_same_everywhere() -> None:
    """One duration formatter, for the report and for ``supervisor status``."""
    from supervisor.report.fmt import seconds

    cases = {
        4.2: "4.2 s",
        59.9: "59.9 s",
        60: "1 min 00 s",
        187: "3 min 07 s",
        3600: "1 h 00 min",
        47 * 3600 + 59 * 60: "47 h 59 min",
        50 * 3600: "2 d 02 h",
    }
    assert {v: seconds(v) for v in cases} == cases


def test_attributes_of_the_wrong_type_do_not_break_the_report(tmp_path: Path) -> None:
    """Storage written by other tools: a wrong type reads as absent, the page renders."""
    study = _single_study()
    wrong = {
        "worker": 7,
        "hostname": ["node"],
        "started": "noon",
        "finished": -3.0,
        "duration_s": "long",
        "metrics": "score=1",
        "history": {"epoch": 0},
        "error": {"message": "x"},
        "error_type": 3,
        "failure": None,
        "traceback": 1,
        "artifacts": 5,
    }
    trial = create_trial(
        state=TrialState.FAIL, params=_params(9), distributions=DISTS, user_attrs=wrong
    )
    trial.datetime_start = T0
    trial.datetime_complete = T0 + dt.timedelta(seconds=30)
    study.add_trial(trial)
    html = write_search_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "1 unknown" in _section(html, "summary")  # failures by kind: it has none
    assert html.rstrip().endswith("</html>")


def test_light_trials_keep_constraints_in_both_formats() -> None:
    """Optuna keeps constraints as a list under "constraints" or per "constraints:<name>";
    the figures colour infeasible trials from them."""
    from supervisor.report.campaign import light

    listed = _trial(0, TrialState.COMPLETE, _params(0), [0.5])
    listed.system_attrs = {"constraints": [1.0], "nsga2:generation": 3}
    named = _trial(1, TrialState.COMPLETE, _params(1), [0.6])
    named.set_constraint("memory", -2.0)
    assert light(listed).constraints == {"0": 1.0}
    assert light(listed).system_attrs == {"constraints": [1.0]}  # nothing else
    assert light(named).constraints == {"memory": -2.0}
    shown = light(named).user_attrs
    assert set(shown) == {"worker", "duration_s"} and shown["duration_s"] == 121.0
