"""``supervisor export``'s table carries each trial's provenance: enough to find its node
and batch job and to rerun it (seeds, node settings)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from supervisor.study import attrs
from supervisor.study.export import trials_frame, write_table

WHERE = {
    "node": "n3",
    "cpu": "EPYC 7763",
    "job": {"system": "slurm", "job_id": "4242"},
    "cores": 4,
    "node_cores": 64,
    "gpus": 0.0,
    "seed": 12,
    "data_seed": 0,
    "settings": {"xla": "off", "precision": "auto", "dtype_policy": "float32"},
}


def test_export_has_where_each_trial_ran(tmp_path: Path) -> None:
    study = optuna.create_study()
    x = {"x": FloatDistribution(0.0, 1.0)}
    study.add_trial(
        create_trial(
            value=1.0, params={"x": 0.5}, distributions=x, user_attrs={attrs.PROVENANCE: WHERE}
        )
    )
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.1}, distributions=x))
    frame = trials_frame(study)
    row = frame.iloc[0]
    assert (row["node"], row["batch_job"], row["cpu"]) == ("n3", "slurm 4242", "EPYC 7763")
    assert (row["cores"], row["node_cores"], row["seed"], row["data_seed"]) == (4, 64, 12, 0)
    assert json.loads(row["node_settings"]) == WHERE["settings"]
    assert pd.isna(frame.iloc[1]["node"])  # a trial without provenance: empty cells
    path = write_table(study, tmp_path / "t.csv", "csv")
    assert "batch_job" in path.read_text().splitlines()[0]


def test_export_marks_the_rows_not_trained_in_this_campaign() -> None:
    study = optuna.create_study()
    x = {"x": FloatDistribution(0.0, 1.0)}
    told = {attrs.WARM_START: "lr-sweep#7"}
    study.add_trial(create_trial(value=1.0, params={"x": 0.5}, distributions=x, user_attrs=told))
    study.add_trial(create_trial(value=2.0, params={"x": 0.2}, distributions=x))
    twin = {attrs.DUPLICATE_OF: 1, attrs.DUPLICATE_KNOWN: True}
    study.add_trial(create_trial(value=2.0, params={"x": 0.2}, distributions=x, user_attrs=twin))
    frame = trials_frame(study)
    assert frame["warm_start"].iloc[0] == "lr-sweep#7" and pd.isna(frame["warm_start"].iloc[1])
    assert frame["duplicate_of"].iloc[2] == 1 and pd.isna(frame["duplicate_of"].iloc[1])


def test_a_conditional_parameter_sits_with_the_other_parameters(tmp_path: Path) -> None:
    """Columns came in the order the rows first held them: momentum, searched with sgd
    only, and a metric the first trials lacked went last, after the provenance."""
    study = optuna.create_study()
    study.set_user_attr(attrs.OBJECTIVES, ["loss"])
    opt = optuna.distributions.CategoricalDistribution(["adam", "sgd"])
    for i, optimizer in enumerate(["adam", "adam", "sgd"]):
        params: dict[str, object] = {"optimizer": optimizer}
        dists: dict[str, optuna.distributions.BaseDistribution] = {"optimizer": opt}
        metrics = {"loss": 1.0 / (i + 1)}
        if optimizer == "sgd":
            params["momentum"] = 0.9
            dists["momentum"] = FloatDistribution(0.0, 0.95)
            metrics["latency_ms"] = 3.0
        attributes = {attrs.METRICS: metrics, attrs.PROVENANCE: WHERE}
        study.add_trial(
            create_trial(value=metrics["loss"], params=params, distributions=dists,
                         user_attrs=attributes)
        )  # fmt: skip
    header = write_table(study, tmp_path / "t.csv", "csv").read_text().splitlines()[0]
    columns = header.split(",")
    assert columns[:7] == [
        "number", "state", "datetime_start", "datetime_complete", "loss",
        "params_optimizer", "params_momentum",
    ]  # fmt: skip
    assert columns[7] == "metric_latency_ms" and columns[-1] == "node_settings"


def test_a_missing_mixed_type_parameter_is_null_in_parquet(tmp_path: Path) -> None:
    """A categorical of mixed types ([1, "a"]) is stored as text in Parquet; where a
    trial did not have it (conditional) the cell read "nan", like a value."""
    import pyarrow.parquet as pq

    study = optuna.create_study()
    x = FloatDistribution(0.0, 1.0)
    mix = optuna.distributions.CategoricalDistribution([1, "a"])
    study.add_trial(create_trial(value=1.0, params={"x": 0.5}, distributions={"x": x}))
    for i, choice in enumerate([1, "a"]):
        study.add_trial(
            create_trial(value=2.0 + i, params={"x": 0.5, "mix": choice},
                         distributions={"x": x, "mix": mix})
        )  # fmt: skip
    table = pq.read_table(write_table(study, tmp_path / "t.parquet", "parquet"))
    assert table.column("params_mix").to_pylist() == [None, "1", "a"]


def test_an_objective_named_as_a_column_keeps_its_values(tmp_path: Path) -> None:
    """A classifier's objective "error" was overwritten by the column of trials' error
    messages (empty for complete trials): the export had no objective values at all.
    Such an objective is exported as value_<name>; no other column changes."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_user_attr(attrs.OBJECTIVES, ["error", "seed"])
    x = {"x": FloatDistribution(0.0, 1.0)}
    where = {attrs.PROVENANCE: WHERE, "metrics": {"error": 0.25, "seed": 3.0, "n": 1.0}}
    study.add_trial(create_trial(values=[0.25, 3.0], params={"x": 0.5}, distributions=x,
                                 user_attrs=where))  # fmt: skip
    frame = trials_frame(study)
    row = frame.iloc[0]
    assert (row["value_error"], row["value_seed"]) == (0.25, 3.0)
    assert pd.isna(row["error"]) and row["seed"] == 12  # the trial's own, as before
    assert "metric_error" not in frame.columns and row["metric_n"] == 1.0
    header = write_table(study, tmp_path / "t.csv", "csv").read_text().splitlines()[0]
    assert header.startswith("number,state,datetime_start,datetime_complete,value_error,")
