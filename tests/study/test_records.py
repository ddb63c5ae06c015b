"""``TrialRecord.from_frozen``: the one typed reader of what the supervisor stores per
trial. Storage holds data written by other versions and by users' scripts, so a value of
the wrong type reads as None (empty for metrics and history), never as an exception."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from supervisor.study import attrs
from supervisor.study.records import TrialRecord

START = dt.datetime(2026, 1, 2, 3, 4, 5)

EVERY_ATTRIBUTE: dict[str, Any] = {
    attrs.WORKER: "tcp://10.0.0.1:4000",
    attrs.HOSTNAME: "node1",
    attrs.STARTED: 1_800_000_000.5,
    attrs.FINISHED: 1_800_000_060,
    attrs.DURATION_S: 59.5,
    attrs.METRICS: {"loss": 0.25, "n_params": 1234, "diverged": math.inf},
    attrs.HISTORY: [{"epoch": 0.0, "loss": 0.5}, {"epoch": 1.0, "loss": 0.25}],
    attrs.DATA_SECONDS: 1.5,
    attrs.RSS_MB: 512.0,
    attrs.ARTIFACTS: "artifacts/trial-3/artifacts.npz",
    attrs.ARTIFACTS_ERROR: "disk full",
    attrs.OUTPUTS: "artifacts/trial-3/outputs.npz",
    attrs.OUTPUTS_ERROR: "too large",
    attrs.MODEL: "trials/000003/model.npz",
    attrs.MODEL_ERROR: "model not kept: OSError: disk full",
    attrs.RESUMED_FROM_EPOCH: 1,
    attrs.PRUNED_AT_EPOCH: 2,
    attrs.FAILURE: "infrastructure",
    attrs.ERROR_TYPE: "WorkerDied",
    attrs.ERROR: "the worker died",
    attrs.TRACEBACK: "Traceback (most recent call last): ...",
    attrs.DUPLICATE_OF: 1,
    attrs.DUPLICATE_KNOWN: False,
    attrs.WARM_START: "earlier#4",
    attrs.DRIVER: "host:42:abc",
    attrs.ATTEMPT: 2,
    attrs.UNSTARTED: 1,
    attrs.RETRY_OF: 0,
    attrs.SEED: 7,
    attrs.MEMBER_OF: 5,
    attrs.MEMBER_EPOCHS: 10,
    attrs.PROVENANCE: {
        "node": "n3",
        "host": "host3",
        "cpu": "EPYC 7763",
        "job": {"system": "slurm", "job_id": "4242", "array_task": "5"},
        "devices": {"CUDA_VISIBLE_DEVICES": "1"},
        "threads": 4,
        "ranks": 2,
        "cores": 8,
        "node_cores": 128,
        "gpus": 0.5,
        "seed": 9,
        "data_seed": 0,
        "settings": {"xla": "auto", "precision": "auto", "dtype_policy": "float32"},
    },
}


def _trial(state: TrialState, user_attrs: dict[str, Any], **kwargs: Any) -> FrozenTrial:
    trial = create_trial(
        state=state,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        user_attrs=user_attrs,
        **kwargs,
    )
    trial.number = 3
    trial.datetime_start = START
    return trial


def test_a_trial_with_every_attribute() -> None:
    trial = _trial(TrialState.COMPLETE, dict(EVERY_ATTRIBUTE), value=0.25)
    record = TrialRecord.from_frozen(trial)
    assert (record.number, record.state, record.values) == (3, TrialState.COMPLETE, (0.25,))
    assert record.params == {"x": 0.5} and record.datetime_start == START
    assert record.worker == "tcp://10.0.0.1:4000" and record.hostname == "node1"
    assert record.where == "tcp://10.0.0.1:4000"
    assert (record.started, record.finished, record.duration) == (
        1_800_000_000.5,
        1.8e9 + 60,
        59.5,
    )
    assert isinstance(record.finished, float)
    assert record.metrics == {"loss": 0.25, "n_params": 1234, "diverged": math.inf}
    assert record.history == ({"epoch": 0.0, "loss": 0.5}, {"epoch": 1.0, "loss": 0.25})
    assert (record.data_seconds, record.rss_mb) == (1.5, 512.0)
    assert record.artifacts == "artifacts/trial-3/artifacts.npz"
    assert record.outputs == "artifacts/trial-3/outputs.npz"
    assert (record.artifacts_error, record.outputs_error) == ("disk full", "too large")
    assert (record.resumed_from_epoch, record.pruned_at_epoch) == (1, 2)
    assert (record.failure, record.error_type) == ("infrastructure", "WorkerDied")
    assert record.error == "the worker died"
    assert (record.traceback or "").startswith("Traceback")
    assert (record.duplicate_of, record.duplicate_known) == (1, False)
    assert (record.driver, record.attempt, record.unstarted) == ("host:42:abc", 2, 1)
    assert (record.retry_of, record.seed, record.member_of, record.member_epochs) == (0, 7, 5, 10)
    # Every field but Optuna's own is read from an attribute: none is left at its default.
    optuna_fields = {"number", "state", "values", "params", "datetime_start", "datetime_complete"}
    for f in dataclasses.fields(TrialRecord):
        if f.name not in optuna_fields:
            assert getattr(record, f.name) is not None, f.name
            assert getattr(record, f.name) not in ((), {}), f.name


def test_provenance_reads_typed_and_tolerates_what_it_does_not_know() -> None:
    record = TrialRecord.from_frozen(_trial(TrialState.COMPLETE, dict(EVERY_ATTRIBUTE), value=1))
    p = record.provenance
    assert p is not None
    assert (p.node, p.host, p.cpu, p.job) == ("n3", "host3", "EPYC 7763", "slurm 4242_5")
    assert p.devices == "CUDA_VISIBLE_DEVICES=1"
    assert (p.threads, p.ranks, p.cores, p.node_cores, p.gpus) == (4, 2, 8, 128, 0.5)
    assert (p.seed, p.data_seed) == (9, 0) and p.settings["dtype_policy"] == "float32"
    odd = {"node": 3, "job": "4242", "cores": -1, "gpus": "one", "seed": 1.5, "settings": []}
    q = TrialRecord.from_frozen(_trial(TrialState.PRUNED, {attrs.PROVENANCE: odd})).provenance
    assert q is not None and q.node is None and q.job is None and q.cores is None
    assert q.gpus is None and q.seed is None and q.settings == {}
    bad = TrialRecord.from_frozen(_trial(TrialState.PRUNED, {attrs.PROVENANCE: "n3"}))
    assert bad.provenance is None


def test_a_trial_with_no_attribute() -> None:
    record = TrialRecord.from_frozen(_trial(TrialState.RUNNING, {}))
    assert record.number == 3 and record.state == TrialState.RUNNING and record.values is None
    assert record.metrics == {} and record.history == () and record.where == ""
    for f in dataclasses.fields(TrialRecord):
        if f.name not in {"number", "state", "params", "datetime_start", "metrics", "history"}:
            assert getattr(record, f.name) is None, f.name


WRONG_TYPES: dict[str, Any] = {
    attrs.WORKER: 4000,
    attrs.HOSTNAME: ["node1"],
    attrs.STARTED: "yesterday",
    attrs.FINISHED: -1.0,  # a time before 1970 is no time the driver wrote
    attrs.DURATION_S: math.nan,
    attrs.METRICS: "loss=0.1",
    attrs.HISTORY: {"epoch": 0},
    attrs.DATA_SECONDS: True,
    attrs.RSS_MB: math.inf,
    attrs.ARTIFACTS: 3,
    attrs.OUTPUTS: {"path": "x"},
    attrs.RESUMED_FROM_EPOCH: 1.5,
    attrs.PRUNED_AT_EPOCH: "2",
    attrs.FAILURE: 1,
    attrs.ERROR_TYPE: None,
    attrs.ERROR: {"message": "x"},
    attrs.TRACEBACK: ["line"],
    attrs.DUPLICATE_OF: True,  # a bool is not a trial number
    attrs.DUPLICATE_KNOWN: 1,  # nor a number a bool
    attrs.ATTEMPT: "2",
    attrs.SEED: 7.0,
    attrs.MEMBER_OF: None,
}


def test_wrong_types_in_storage_read_as_none() -> None:
    study = optuna.create_study()  # through a real storage: the JSON types as stored
    study.add_trial(_trial(TrialState.FAIL, dict(WRONG_TYPES)))
    (stored,) = study.get_trials()
    record = TrialRecord.from_frozen(stored)
    for key in WRONG_TYPES:
        name = {attrs.DURATION_S: "duration"}.get(key, key.removeprefix("supervisor:"))
        value = getattr(record, name)
        assert value in (None, {}, ()), (key, value)


def test_metrics_and_history_keep_only_the_entries_of_the_right_type() -> None:
    user_attrs = {
        attrs.METRICS: {"loss": 0.5, "note": "fine", "flag": True, "nan": math.nan},
        attrs.HISTORY: [{"epoch": 0, "loss": 1.0}, "garbage", None, {"epoch": 1}],
    }
    record = TrialRecord.from_frozen(_trial(TrialState.COMPLETE, user_attrs, value=0.5))
    assert set(record.metrics) == {"loss", "nan"}  # non-finite values stay: they are news
    assert record.history == ({"epoch": 0, "loss": 1.0}, {"epoch": 1})
    # An in-memory study keeps what a script set: a key that is not text reads as text.
    odd = TrialRecord.from_frozen(
        _trial(TrialState.COMPLETE, {attrs.METRICS: {3: 0.5}}, value=0.5)
    )
    assert odd.metrics == {"3": 0.5}


def test_the_error_of_a_study_written_by_an_old_optuna() -> None:
    """Optuna < 3 kept a failed trial's exception in the system attribute fail_reason."""
    trial = _trial(TrialState.FAIL, {}, system_attrs={"fail_reason": "ValueError: x"})
    assert TrialRecord.from_frozen(trial).error == "ValueError: x"
    trial = _trial(TrialState.FAIL, {attrs.ERROR: "ours"}, system_attrs={"fail_reason": "x"})
    assert TrialRecord.from_frozen(trial).error == "ours"


def test_records_are_frozen() -> None:
    record = TrialRecord.from_frozen(_trial(TrialState.COMPLETE, {}, value=1.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.worker = "elsewhere"  # type: ignore[misc]
