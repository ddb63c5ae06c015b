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
