"""Every trial as a table (pandas): params, values, state, duration, worker, error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import supervisor.atomic as atomic

if TYPE_CHECKING:
    import optuna
    import pandas as pd

# User attributes worth a column; the rest (history, traceback) stays in storage.
COLUMNS = ("worker", "hostname", "duration_s", "failure", "error_type", "error")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    import pandas as pd

    from supervisor.study.attrs import OBJECTIVES

    names = study.user_attrs.get(OBJECTIVES) or [
        f"value_{i}" for i in range(len(study.directions))
    ]
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, object] = {
            "number": t.number,
            "state": t.state.name,
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
        }
        for i, name in enumerate(names):
            row[name] = t.values[i] if t.values is not None and i < len(t.values) else None
        row.update({f"params_{k}": v for k, v in t.params.items()})
        metrics = t.user_attrs.get("metrics") or {}
        row.update({f"metric_{k}": v for k, v in metrics.items() if k not in names})
        row.update({k: t.user_attrs.get(k) for k in COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(study: optuna.Study, path: Path, fmt: str) -> Path:
    frame = trials_frame(study)
    if fmt == "parquet":
        # Mixed-type categorical params cannot share an Arrow column: store them as text.
        for col in frame.columns:
            if frame[col].dtype == object and col.startswith("params_"):
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    with atomic.replacing(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path
