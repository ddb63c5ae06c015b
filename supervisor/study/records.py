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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.study import attrs, gc_pause

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
        # Only the attributes the trial has are read: most of the ~35 are absent from any
        # one trial (with its metrics shared, not copied: 0.63 s to 0.46 s for 38,000).
        found: dict[str, Any] = {}
        for key, value in trial.user_attrs.items():
            if (reader := _READERS.get(key)) is not None:
                found[reader[0]] = reader[1](value)
        if found.get("error") is None and trial.state.name == "FAIL":
            from supervisor.optuna_internals import FAIL_REASON_KEY

            found["error"] = _text(trial.system_attrs.get(FAIL_REASON_KEY))
        values = trial.values
        return cls(
            number=trial.number,
            state=trial.state,
            values=None if values is None else tuple(values),
            params=trial.params,
            datetime_start=trial.datetime_start,
            datetime_complete=trial.datetime_complete,
            **found,
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


# The exact types a JSON journal holds (a bool is not a number here; a subclass of a number
# or of a dict, from another storage, takes the slow path, which tests each value).
_NUMBERS = frozenset({int, float})
_TEXT = frozenset({str})
_DICT = frozenset({dict})


def _metrics(value: object) -> dict[str, float]:
    # Non-finite values stay: a diverged model's loss is inf or nan, and that is news.
    if not isinstance(value, dict):
        return {}
    if _TEXT.issuperset(map(type, value)) and _NUMBERS.issuperset(map(type, value.values())):
        return value  # as stored, shared rather than copied (a record is read-only)
    return {
        str(k): v
        for k, v in value.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _history(value: object) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list):
        return ()
    if _DICT.issuperset(map(type, value)):  # the common case, without a test per entry
        return tuple(value)
    return tuple(entry for entry in value if isinstance(entry, dict))


# user attribute -> (TrialRecord's field, what reads its value); ``error`` falls back on
# Optuna's fail reason (``from_frozen``).
_READERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    attrs.WORKER: ("worker", _text),
    attrs.HOSTNAME: ("hostname", _text),
    attrs.STARTED: ("started", _seconds),
    attrs.FINISHED: ("finished", _seconds),
    attrs.DURATION_S: ("duration", _seconds),
    attrs.METRICS: ("metrics", _metrics),
    attrs.HISTORY: ("history", _history),
    attrs.DATA_SECONDS: ("data_seconds", _seconds),
    attrs.RSS_MB: ("rss_mb", _seconds),  # a size: the same checks as a duration
    attrs.ARTIFACTS: ("artifacts", _text),
    attrs.ARTIFACTS_ERROR: ("artifacts_error", _text),
    attrs.OUTPUTS: ("outputs", _text),
    attrs.OUTPUTS_ERROR: ("outputs_error", _text),
    attrs.MODEL: ("model", _text),
    attrs.MODEL_ERROR: ("model_error", _text),
    attrs.RESUMED_FROM_EPOCH: ("resumed_from_epoch", _int),
    attrs.PRUNED_AT_EPOCH: ("pruned_at_epoch", _int),
    attrs.FAILURE: ("failure", _text),
    attrs.ERROR_TYPE: ("error_type", _text),
    attrs.ERROR: ("error", _text),
    attrs.TRACEBACK: ("traceback", _text),
    attrs.DUPLICATE_OF: ("duplicate_of", _int),
    attrs.DUPLICATE_KNOWN: ("duplicate_known", _bool),
    attrs.WARM_START: ("warm_start", _text),
    attrs.DRIVER: ("driver", _text),
    attrs.ATTEMPT: ("attempt", _int),
    attrs.UNSTARTED: ("unstarted", _int),
    attrs.RETRY_OF: ("retry_of", _int),
    attrs.SEED: ("seed", _int),
    attrs.MEMBER_OF: ("member_of", _int),
    attrs.MEMBER_EPOCHS: ("member_epochs", _int),
    attrs.PROVENANCE: ("provenance", Provenance.from_value),
}


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
        with gc_pause.paused():  # a record per trial, none garbage (gc_pause)
            return self._records(trials)

    def _records(self, trials: list[FrozenTrial]) -> list[TrialRecord]:
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
