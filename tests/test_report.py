"""The HTML search report: content, self-containment, escaping and atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial
from plotly.offline import get_plotlyjs

from supervisor.report import write_search_report
from supervisor.report.page import script_safe

optuna.logging.set_verbosity(optuna.logging.WARNING)

HOSTILE = "</script><img src=x onerror=alert(1)>"
T0 = dt.datetime(2026, 3, 1, 12, 0, 0)

DISTS = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "units": IntDistribution(8, 256),
    "act": CategoricalDistribution(["relu", "gelu"]),
}


def _trial(
    i: int,
    state: TrialState,
    params: dict[str, Any],
    values: list[float] | None = None,
    curve: list[float] | None = None,
    dists: dict[str, Any] | None = None,
    **user_attrs: Any,
) -> FrozenTrial:
    start = T0 + dt.timedelta(minutes=5 * i)
    attrs = {
        "worker": f"tcp://10.1.0.{i}:40000",
        "hostname": f"node{i:03d}",
        "started": start.timestamp(),
        "finished": start.timestamp() + 120.0,
        "duration_s": 120.0 + i,
        **user_attrs,
    }
    if values is not None:
        attrs["metrics"] = {"val_accuracy": values[0], "val_loss": 1.0 - values[0]}
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
        trial.datetime_complete = start + dt.timedelta(seconds=120 + i)
    return trial


def _params(i: int) -> dict[str, Any]:
    return {"lr": 10 ** (-4 + 0.3 * i), "units": 16 * (i + 1), "act": ["relu", "gelu"][i % 2]}


def _single_study() -> optuna.Study:
    study = optuna.create_study(study_name="weather-search", direction="maximize")
    study.set_user_attr("supervisor:objectives", ["val_accuracy"])
    study.set_user_attr(
        "supervisor:config",
        {"benchmark": "weather", "budget": {"trials": 12, "epochs": 4}, "seed": 7},
    )
    trials = []
    for i in range(8):
        acc = 0.5 + 0.05 * i
        params = _params(i)
        curve = [acc * f for f in (0.4, 0.7, 0.9, 1.0)]
        trials.append(_trial(i, TrialState.COMPLETE, params, [acc], curve))
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
        )
    )
    trials.append(
        _trial(
            10,
            TrialState.FAIL,
            {"lr": 0.02, "units": 64, "act": "gelu"},
            error="KilledWorker: worker tcp://10.1.0.10:40000 died",
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
    assert 'src="http' not in html
    assert "<script src" not in html
    rest = _without_plotlyjs(html)
    assert "https://cdn" not in rest
    assert not re.search(r"<link[^>]+href=\"?https?:", rest)

    # Every figure is a div with a unique id and valid JSON data.
    figures = _figures(html)
    ids = re.findall(r'<div class="figure" id="([^"]+)">', html)
    assert len(ids) == len(set(ids)) == len(figures) >= 5
    assert set(ids) == set(figures)
    for anchor in ("history", "parallel", "importance", "curves", "timeline"):
        assert "data-figure=" in _section(html, anchor), anchor
    curves = next(f for d, f in figures.items() if d in _section(html, "curves"))
    assert len(curves["data"]) == 9  # 8 complete + 1 pruned trial with intermediate values

    summary = _section(html, "summary")
    assert "weather-search" in summary
    assert "val_accuracy (maximize)" in summary
    # Best trial: #7 with the highest accuracy; its params are listed.
    assert "Best trial: #7" in summary
    assert f"<td>{10 ** (-4 + 0.3 * 7)!r}</td>" in summary
    assert "<td>128</td>" in summary
    assert "supervisor search search_spaces/weather.yaml" in summary
    assert "Experiment configuration" in summary and "benchmark: weather" in summary
    counts = re.findall(r'<td class="num">(\d+)</td>', summary)[:6]
    assert counts == ["8", "1", "2", "1", "1", "13"]  # COMPLETE PRUNED FAIL RUNNING WAITING

    best = _section(html, "best")
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td>", best)
    assert rows == ["7", "6", "5", "4", "3", "2", "1", "0"]

    failures = _section(html, "failures")
    assert "CUDA out of memory while allocating 12.5 GiB" in failures
    assert "ResourceExhaustedError" in failures
    assert "infrastructure" in failures
    assert "tcp://10.1.0.9:40000" in failures


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
    # One history and one importance figure per objective.
    assert _section(html, "history").count("data-figure=") == 2
    assert _section(html, "importance").count("data-figure=") == 2


def test_large_studies_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures draw a sample beyond their caps (here made small), keeping trial numbers."""
    from supervisor.report import search

    for cap, value in [
        ("PARALLEL_TRIALS", 10),
        ("PARETO_PLOT_TRIALS", 15),
        ("TIMELINE_TRIALS", 20),
    ]:
        monkeypatch.setattr(search, cap, value)
    monkeypatch.setattr(search, "CURVE_TRIALS", 4)
    study = optuna.create_study(study_name="big", directions=["maximize", "minimize"])
    trials = [
        _trial(i, TrialState.COMPLETE, _params(i % 9), [(i * 37 % 60) / 60, (i * 11 % 60) / 60])
        for i in range(60)
    ]
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "big.html").read_text(encoding="utf-8")
    figures = _figures(html)

    def figure_in(anchor: str) -> dict[str, Any]:
        section = _section(html, anchor)
        return next(f for d, f in figures.items() if f'data-figure="{d}"' in section)

    lines = [t for t in figure_in("parallel")["data"] if t.get("mode") == "lines"]
    assert len(lines) == 10
    assert "10 of 60 complete trials" in _section(html, "parallel")
    hovers = [text for t in figure_in("pareto")["data"] for text in t.get("text") or []]
    drawn = {json.loads(text.replace("<br>", "\n"))["number"] for text in hovers}
    assert len(drawn) == 15
    assert {t.number for t in study.best_trials} <= drawn  # the front, under its own numbers
    assert sum(len(t["y"]) for t in figure_in("timeline")["data"] if "y" in t) == 20

    single = _single_study()
    html = write_search_report(single, tmp_path / "curves.html").read_text(encoding="utf-8")
    figures = _figures(html)
    assert len(figure_in("curves")["data"]) == 4
    assert "4 of 9 trials are shown" in _section(html, "curves")


def test_study_without_complete_trials_renders(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="nothing-yet")
    study.add_trial(
        _trial(0, TrialState.FAIL, {"lr": 0.01, "units": 8, "act": "relu"}, error="boom")
    )
    study.add_trial(_trial(1, TrialState.RUNNING, {"lr": 0.02, "units": 9, "act": "relu"}))
    html = write_search_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    for anchor in ("best", "history", "parallel", "importance"):
        assert "No complete trial yet" in _section(html, anchor) or "at least 2" in _section(
            html, anchor
        )
    assert "boom" in _section(html, "failures")
    assert "data-figure=" in _section(html, "timeline")
    assert html.rstrip().endswith("</html>")

    empty = optuna.create_study(study_name="empty")
    html = write_search_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No trial has started yet" in html
    assert "data-figure=" not in html
    assert get_plotlyjs()[:300] not in html  # no figure, no 4.8 MB library


def test_plain_optuna_study(tmp_path: Path) -> None:
    """No supervisor attributes: the names fall back, the tables still fill."""

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
    assert "data-figure=" in _section(html, "curves")


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    name = f"study{HOSTILE}"
    param = f"p{HOSTILE}"
    dists = {
        param: CategoricalDistribution(["safe", HOSTILE]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    study = optuna.create_study(study_name=name, direction="minimize")
    study.set_user_attr("supervisor:objectives", [f"loss{HOSTILE}"])
    study.set_user_attr("supervisor:config", {"note": HOSTILE})
    trials = [
        _trial(
            i,
            TrialState.COMPLETE,
            {param: [HOSTILE, "safe"][i % 2], "lr": 10 ** (-3 + 0.3 * i)},
            [1.0 / (i + 1)],
            [1.0, 1.0 / (i + 1)],
            dists=dists,
            worker=f"tcp://{HOSTILE}",
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
        )
    )
    study.add_trials(trials)
    html = write_search_report(study, tmp_path / "x.html", {HOSTILE: HOSTILE}).read_text(
        encoding="utf-8"
    )

    assert "<img src=x onerror=" not in html
    assert "</script><img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    # Scripts end only where they should: one close tag per open tag.
    assert html.count("</script>") == len(re.findall(r"<script[ >]", html))
    # The text survives inside the figure data (escaped for the script, not dropped).
    assert any(HOSTILE in json.dumps(fig, ensure_ascii=False) for fig in _figures(html).values())
    assert "data-figure=" in _section(html, "parallel")


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

    monkeypatch.setattr("supervisor.report.search.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_search_report(study, out)
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.html"]
    assert out.read_bytes() == before


def test_import_is_cheap() -> None:
    """The CLI imports supervisor.report at start-up; plotly and Optuna load only on use."""
    code = (
        "import sys, supervisor.report; "
        "heavy = [m for m in ('optuna', 'plotly', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
