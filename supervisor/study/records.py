"""What the supervisor stores per trial, read back typed: ``TrialRecord.from_frozen``.

The driver writes the user attributes named in ``supervisor.study.attrs``; reports,
``status``, ``export`` and the ensemble read them here, once, instead of each spelling the
keys and guessing their types. Storage holds data from other processes, other versions
and users' own scripts, so a value of the wrong type (or a negative or non-finite time)
reads as None, or as empty for ``metrics`` and ``history``, never as an exception.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial, TrialState

__all__ = ["Provenance", "TrialRecord"]


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One trial as the supervisor stored it. The fields up to ``datetime_complete`` are
    Optuna's; the others are user attributes (``supervisor.study.attrs`` says what each
    holds), None where the trial has none."""

    number: int
    state: TrialState
    values: tuple[float, ...] | None
    params: Mapping[str, Any]
    datetime_start: dt.datetime | None = None
    datetime_complete: dt.datetime | None = None
    worker: str | None = None
    hostname: str | None = None
    started: float | None = None  # Unix time
    finished: float | None = None  # Unix time
    duration: float | None = None  # seconds on the worker (``duration_s``)
    metrics: Mapping[str, float] = field(default_factory=dict)  # numeric values only
    history: tuple[Mapping[str, Any], ...] = ()  # the entries that are mappings
    data_seconds: float | None = None
    rss_mb: float | None = None
    artifacts: str | None = None
    artifacts_error: str | None = None
    outputs: str | None = None
    outputs_error: str | None = None
    model: str | None = None  # its model.npz (keep_models), where its worker saved one
    model_error: str | None = None  # why its worker could not save it
    resumed_from_epoch: int | None = None
    pruned_at_epoch: int | None = None
    failure: str | None = None  # "model" | "infrastructure" | "interrupted" | "surplus"
    error_type: str | None = None
    # The supervisor's message; for a study written by Optuna < 3, the exception Optuna
    # kept in a system attribute.
    error: str | None = None
    traceback: str | None = None
    duplicate_of: int | None = None
    duplicate_known: bool | None = None  # its twin's result was in the study when proposed
    warm_start: str | None = None  # "<run>#<number>": told from an earlier run, not trained
    driver: str | None = None
    attempt: int | None = None
    unstarted: int | None = None  # worker deaths its parameters met while queued
    retry_of: int | None = None
    seed: int | None = None
    member_of: int | None = None
    member_epochs: int | None = None
    provenance: Provenance | None = None  # where it ran; None for trials without one

    @classmethod
    def from_frozen(cls, trial: FrozenTrial) -> TrialRecord:
        """The record of ``trial``; never raises on what its attributes hold."""
        user = trial.user_attrs
        get = user.get
        values = trial.values
        error = _text(get(attrs.ERROR))
        if error is None and trial.state.name == "FAIL":
            from supervisor.optuna_internals import FAIL_REASON_KEY

            error = _text(trial.system_attrs.get(FAIL_REASON_KEY))
        return cls(
            number=trial.number,
            state=trial.state,
            values=None if values is None else tuple(values),
            params=trial.params,
            datetime_start=trial.datetime_start,
            datetime_complete=trial.datetime_complete,
            worker=_text(get(attrs.WORKER)),
            hostname=_text(get(attrs.HOSTNAME)),
            started=_seconds(get(attrs.STARTED)),
            finished=_seconds(get(attrs.FINISHED)),
            duration=_seconds(get(attrs.DURATION_S)),
            metrics=_metrics(get(attrs.METRICS)),
            history=_history(get(attrs.HISTORY)),
            data_seconds=_seconds(get(attrs.DATA_SECONDS)),
            rss_mb=_seconds(get(attrs.RSS_MB)),  # a size: the same checks as a duration
            artifacts=_text(get(attrs.ARTIFACTS)),
            artifacts_error=_text(get(attrs.ARTIFACTS_ERROR)),
            outputs=_text(get(attrs.OUTPUTS)),
            outputs_error=_text(get(attrs.OUTPUTS_ERROR)),
            model=_text(get(attrs.MODEL)),
            model_error=_text(get(attrs.MODEL_ERROR)),
            resumed_from_epoch=_int(get(attrs.RESUMED_FROM_EPOCH)),
            pruned_at_epoch=_int(get(attrs.PRUNED_AT_EPOCH)),
            failure=_text(get(attrs.FAILURE)),
            error_type=_text(get(attrs.ERROR_TYPE)),
            error=error,
            traceback=_text(get(attrs.TRACEBACK)),
            duplicate_of=_int(get(attrs.DUPLICATE_OF)),
            duplicate_known=_bool(get(attrs.DUPLICATE_KNOWN)),
            warm_start=_text(get(attrs.WARM_START)),
            driver=_text(get(attrs.DRIVER)),
            attempt=_int(get(attrs.ATTEMPT)),
            unstarted=_int(get(attrs.UNSTARTED)),
            retry_of=_int(get(attrs.RETRY_OF)),
            seed=_int(get(attrs.SEED)),
            member_of=_int(get(attrs.MEMBER_OF)),
            member_epochs=_int(get(attrs.MEMBER_EPOCHS)),
            provenance=Provenance.from_value(get(attrs.PROVENANCE)),
        )

    @property
    def where(self) -> str:
        """The worker it ran on, else its node, else "" (not reported yet)."""
        return self.worker or self.hostname or ""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a trial ran and what it held (``attrs.PROVENANCE``), read back typed."""

    node: str | None = None  # as the batch system names it
    host: str | None = None
    cpu: str | None = None  # model name
    job: str | None = None  # "slurm 1234", "slurm 1234_5" for an array task
    devices: str | None = None  # "CUDA_VISIBLE_DEVICES=0"
    threads: int | None = None  # per rank
    ranks: int | None = None
    cores: float | None = None  # it held: threads x ranks
    node_cores: float | None = None  # of its node (its batch job's, or the machine's)
    gpus: float | None = None  # it held (a shared GPU counts its share)
    seed: int | None = None  # the model seed it trained with
    data_seed: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # NodeSettings + dtype policy
    # What the model was given (None: a trial recorded before they were): the benchmark's
    # options, its epochs, its parameters with the fixed values.
    options: Mapping[str, Any] | None = None
    epochs: int | None = None
    inputs: Mapping[str, Any] | None = None

    @classmethod
    def from_value(cls, value: object) -> Provenance | None:
        if not isinstance(value, dict):
            return None
        get = value.get
        job = get("job")
        job_text = None
        if isinstance(job, dict) and isinstance(job.get("job_id"), str):
            array = job.get("array_task")
            job_text = f"{job.get('system', 'job')} {job['job_id']}" + (
                f"_{array}" if isinstance(array, str) else ""
            )
        devices = get("devices")
        settings = get("settings")
        return cls(
            node=_text(get("node")),
            host=_text(get("host")),
            cpu=_text(get("cpu")),
            job=job_text,
            devices=" ".join(f"{k}={v}" for k, v in devices.items())
            if isinstance(devices, dict)
            else None,
            threads=_int(get("threads")),
            ranks=_int(get("ranks")),
            cores=_seconds(get("cores")),  # a count: the same checks as a duration
            node_cores=_seconds(get("node_cores")),
            gpus=_seconds(get("gpus")),
            seed=_int(get("seed")),
            data_seed=_int(get("data_seed")),
            settings=dict(settings) if isinstance(settings, dict) else {},
            options=_mapping(get("options")),
            epochs=_int(get("epochs")),
            inputs=_mapping(get("inputs")),
        )


def _mapping(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: object) -> float | None:
    """A duration or a Unix time: a finite number, not negative."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    return None


def _metrics(value: object) -> dict[str, float]:
    # Non-finite values stay: a diverged model's loss is inf or nan, and that is news.
    if not isinstance(value, dict):
        return {}
    return {
        str(k): v
        for k, v in value.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _history(value: object) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(entry for entry in value if isinstance(entry, dict))


class RecordCache:
    """The records of a study's trials, kept between looks (``supervisor status --watch``
    every few seconds on a 100,000-trial campaign read every trial again each time). A
    finished trial never changes, and a journal storage hands the same ``FrozenTrial``
    until it does (it replaces a trial's object to change it): a trial is read again only
    when its object is another. A storage that builds new objects at each read (a
    database) is read whole each time, as without the cache."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[FrozenTrial, TrialRecord]] = {}

    def records(self, trials: list[FrozenTrial]) -> list[TrialRecord]:
        found: list[TrialRecord] = []
        kept = self._kept
        for trial in trials:
            hit = kept.get(trial.number)
            if hit is not None and hit[0] is trial:
                found.append(hit[1])
                continue
            record = TrialRecord.from_frozen(trial)
            if trial.state.is_finished():
                kept[trial.number] = (trial, record)
            found.append(record)
        return found
