"""Cost in allocation units (node-, core-, GPU-hours per outcome) from the trials' own
times and what their provenance says they held; and where trials ran, in the report."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from supervisor.report import cost
from supervisor.report.search import render_search_report
from supervisor.study import attrs
from supervisor.study.records import TrialRecord

T0 = 1_800_000_000.0
HOUR = 3600.0


def held(cores: int = 4, node: int = 16, gpus: float = 0.0, **more: Any) -> dict[str, Any]:
    return {"node": "n1", "cores": cores, "node_cores": node, "gpus": gpus, **more}


def trial(
    number: int,
    state: TrialState,
    start: float | None,
    seconds: float | None,
    worker: str = "tcp://a:1",
    **user: Any,
) -> FrozenTrial:
    user_attrs: dict[str, Any] = {attrs.WORKER: worker, **user}
    if start is not None:
        user_attrs[attrs.STARTED] = start
    if seconds is not None:
        user_attrs[attrs.DURATION_S] = seconds
    t = create_trial(
        state=state,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        value=1.0 if state == TrialState.COMPLETE else None,
        user_attrs=user_attrs,
    )
    t.number = number
    return t


def records(*trials: FrozenTrial) -> list[TrialRecord]:
    return [TrialRecord.from_frozen(t) for t in trials]


def test_node_core_and_gpu_hours_per_outcome() -> None:
    p = {attrs.PROVENANCE: held(4, 16, 0.5)}
    found = cost.campaign_cost(
        records(
            trial(0, TrialState.COMPLETE, T0, HOUR, **p),
            # Same worker, 10 minutes idle after trial 0.
            trial(1, TrialState.PRUNED, T0 + HOUR + 600, 1800, **p),
            trial(2, TrialState.FAIL, T0, 900, "tcp://b:1", failure="model", **p),
            # Queued on a worker that died: it never started, it cost nothing.
            trial(4, TrialState.FAIL, None, None, "tcp://c:1", failure="infrastructure"),
            trial(5, TrialState.COMPLETE, None, None, duplicate_of=0),  # told, never trained
            trial(6, TrialState.FAIL, None, None, failure="surplus"),
            trial(7, TrialState.RUNNING, T0, None, "tcp://d:1", **p),  # 2 h so far
            trial(8, TrialState.RUNNING, T0, None, "tcp://e:1", **p),  # its driver is gone
        ),
        now=T0 + 2 * HOUR,
        lost={8},
    )
    assert list(found.usage) == [cost.COMPLETE, cost.PRUNED, cost.FAILED, cost.RUNNING, cost.IDLE]
    u = found.usage
    assert u[cost.COMPLETE].node_seconds == pytest.approx(HOUR / 4)  # 4 of 16 cores, 1 h
    assert u[cost.COMPLETE].core_seconds == pytest.approx(4 * HOUR)
    assert u[cost.COMPLETE].gpu_seconds == pytest.approx(HOUR / 2)
    assert u[cost.PRUNED].node_seconds == pytest.approx(1800 / 4)
    assert u[cost.FAILED].trials == 1 and u[cost.FAILED].seconds == 900
    assert u[cost.RUNNING].seconds == pytest.approx(2 * HOUR)
    assert u[cost.IDLE].seconds == pytest.approx(600) and u[cost.IDLE].trials == 0
    assert found.unit == "node" and found.without_provenance == 0
    assert found.total("node") == pytest.approx((HOUR + 1800 + 900 + 2 * HOUR + 600) / 4)


def test_a_dead_worker_s_trial_counts_as_wasted_from_its_start_to_its_end() -> None:
    lost = trial(3, TrialState.FAIL, T0, None, failure="infrastructure")
    lost.datetime_start = dt.datetime.fromtimestamp(T0 - 60)
    lost.datetime_complete = dt.datetime.fromtimestamp(T0 + 1200)
    ok = trial(4, TrialState.COMPLETE, T0, 600, "tcp://b:1", **{attrs.PROVENANCE: held(2, 8)})
    found = cost.campaign_cost(records(lost, ok), now=T0 + HOUR)
    # Queued for 60 s before its start: not counted; 20 min on its worker: wasted.
    assert found.usage[cost.WASTED].seconds == pytest.approx(1200)
    # No provenance: it is taken to hold what the others held (2 of 8 cores).
    assert found.usage[cost.WASTED].node_seconds == pytest.approx(1200 / 4)
    assert (found.with_provenance, found.without_provenance) == (1, 1)


def test_without_any_provenance_core_hours_come_from_the_metrics() -> None:
    metrics = {attrs.METRICS: {"train_seconds": 100.0, "node_seconds": 300.0}}
    found = cost.campaign_cost(records(trial(0, TrialState.COMPLETE, T0, 100, **metrics)), T0)
    assert found.unit == "core" and not found.node_known
    assert found.usage[cost.COMPLETE].core_seconds == pytest.approx(300)
    line = found.line()
    assert line.startswith("cost: 0.0833 core-hours (complete 0.0833)")
    assert "not sacct" in line


def test_the_status_line_names_every_outcome_and_gpu_hours() -> None:
    p = {attrs.PROVENANCE: held(8, 16, 1.0)}
    found = cost.campaign_cost(
        records(
            trial(0, TrialState.COMPLETE, T0, HOUR, **p),
            trial(1, TrialState.FAIL, T0, HOUR, "tcp://b:1", failure="interrupted", **p),
        ),
        T0 + 2 * HOUR,
    )
    assert found.line() == (
        "cost: 1 node-hours (complete 0.5, wasted 0.5); 2 GPU-hours;"
        " from the trials' own times (not sacct)"
    )


def test_the_report_shows_cost_and_where_the_best_trials_ran() -> None:
    study = optuna.create_study(study_name="costed", direction="minimize")
    study.set_user_attr("supervisor:objectives", ["loss"])
    job = {"system": "slurm", "job_id": "777"}
    settings = {"xla": "auto", "precision": "auto", "dtype_policy": "float32"}
    for i in range(4):
        where = held(4, 16, 1.0, cpu="EPYC 7763", job=job, seed=100 + i, settings=settings)
        t = trial(i, TrialState.COMPLETE, T0 + i * 700, 600, **{attrs.PROVENANCE: where})
        t.values = [float(i)]
        study.add_trial(t)
    html = render_search_report(study)
    section = re.search(r'<section id="resources">(.*?)</section>', html, re.S)
    assert section and "Cost in allocation units" in html
    row = re.search(r"<tr><td>complete</td>.*?</tr>", section.group(1))
    assert row and "0.667" in row.group(0)  # 4 x 600 s x 4/16 of a node = 0.667 node-h
    assert "GPU-hours" in section.group(1) and "idle between trials" in section.group(1)
    where = re.search(r'<section id="provenance">(.*?)</section>', html, re.S)
    assert where
    text = where.group(1)
    assert "EPYC 7763" in text and "slurm 777" in text and "4 of 16 cores, 1 GPU" in text
    assert "dtype_policy=float32" in text
    assert re.search(r'<td class="num">0</td><td>COMPLETE</td>.*?<td class="num">100</td>', text)
