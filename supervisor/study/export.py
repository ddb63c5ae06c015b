"""Every trial as a table (pandas): params, values, state, duration, worker, error, and
where it ran (node, batch job, CPU, devices, cores and GPUs held, seeds, node settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import supervisor.atomic as atomic
from supervisor.study import attrs
from supervisor.study.feasibility import feasible
from supervisor.study.records import TrialRecord

if TYPE_CHECKING:
    import optuna
    import pandas as pd


def _columns(record: TrialRecord) -> dict[str, object]:
    """The user attributes worth a column, named as stored; the rest (history,
    traceback) stays in storage. ``warm_start`` and ``duplicate_of`` mark the rows that
    were not trained in this campaign (told from an earlier run, or a twin's result)."""
    return {
        attrs.WARM_START: record.warm_start,
        attrs.DUPLICATE_OF: record.duplicate_of,
        attrs.WORKER: record.worker,
        attrs.HOSTNAME: record.hostname,
        attrs.DURATION_S: record.duration,
        attrs.FAILURE: record.failure,
        attrs.ERROR_TYPE: record.error_type,
        attrs.ERROR: record.error,
        **_provenance(record),
    }


def _provenance(record: TrialRecord) -> dict[str, object]:
    """Where it ran and what reruns it: columns ``node``, ``batch_job``, ``cpu``,
    ``devices``, ``cores``, ``node_cores``, ``gpus``, ``seed``, ``data_seed`` and
    ``node_settings`` (JSON); empty for a trial without provenance."""
    p = record.provenance
    if p is None:
        return {}
    return {
        "node": p.node,
        "batch_job": p.job,
        "cpu": p.cpu,
        "devices": p.devices,
        "cores": p.cores,
        "node_cores": p.node_cores,
        "gpus": p.gpus,
        "seed": p.seed,
        "data_seed": p.data_seed,
        "node_settings": json.dumps(dict(p.settings), sort_keys=True) if p.settings else None,
    }


_OWN_COLUMNS = frozenset(
    {
        "number", "state", "datetime_start", "datetime_complete", "feasible",
        attrs.WARM_START, attrs.DUPLICATE_OF, attrs.WORKER, attrs.HOSTNAME, attrs.DURATION_S,
        attrs.FAILURE, attrs.ERROR_TYPE, attrs.ERROR, "node", "batch_job", "cpu", "devices",
        "cores", "node_cores", "gpus", "seed", "data_seed", "node_settings",
    }
)  # fmt: skip


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    import pandas as pd
    from optuna.trial import TrialState

    names = study.user_attrs.get(attrs.OBJECTIVES) or [
        f"value_{i}" for i in range(len(study.directions))
    ]
    # An objective named as a column of the table ("error", a classifier's error rate;
    # "seed", "state") was overwritten by that column (or overwrote it): value_<name>.
    names = [str(n) for n in names]
    columns = [f"value_{n}" if n in _OWN_COLUMNS else n for n in names]
    rows = []
    trials = study.get_trials(deepcopy=False)
    # A column ``feasible`` where the space file had constraints: whether each complete
    # trial keeps them (only those are ever the best, ``supervisor.study.feasibility``).
    constrained = any(t.constraints for t in trials)
    for t in trials:
        record = TrialRecord.from_frozen(t)
        values = record.values
        row: dict[str, object] = {
            "number": record.number,
            "state": record.state.name,
            "datetime_start": record.datetime_start,
            "datetime_complete": record.datetime_complete,
        }
        for i, name in enumerate(columns):
            row[name] = values[i] if values is not None and i < len(values) else None
        row.update({f"params_{k}": v for k, v in record.params.items()})
        row.update({f"metric_{k}": v for k, v in record.metrics.items() if k not in names})
        if constrained:
            row["feasible"] = feasible(t) if t.state == TrialState.COMPLETE else None
        row.update(_columns(record))
        rows.append(row)
    frame = pd.DataFrame(rows)
    # Columns come in the order rows first hold them: a conditional parameter (or a metric
    # some trials lack) went last, after the provenance. Parameters and metrics together.
    lead = ["number", "state", "datetime_start", "datetime_complete", *columns]
    rest = [c for c in frame.columns if c not in lead]
    order = [c for c in lead if c in frame.columns]
    order += [c for c in rest if c.startswith("params_")]
    order += [c for c in rest if c.startswith("metric_")]
    order += [c for c in rest if not c.startswith(("params_", "metric_"))]
    return frame[order]


def write_table(study: optuna.Study, path: Path, fmt: str) -> Path:
    frame = trials_frame(study)
    if fmt == "parquet":
        import pandas as pd

        # Mixed-type categorical params cannot share an Arrow column: store them as text.
        # A trial without the parameter (conditional) holds NaN here: null, not "nan".
        for col in frame.columns:
            if frame[col].dtype == object and col.startswith("params_"):
                frame[col] = frame[col].map(lambda v: None if pd.isna(v) else str(v))
    with atomic.replacing(path, mode=0o600) as tmp:  # private: it holds trials' errors
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path
