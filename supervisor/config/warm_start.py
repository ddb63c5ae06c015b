"""The ``warm_start:`` section of a space file: earlier runs whose trials the sampler learns
from before this run trains anything.

    warm_start:
      - old-study                        # a study name under the runs directory
      - runs/lr-sweep                    # or a run directory
      - run: runs/v1                     # parameters renamed since that run
        rename: {learning_rate: lr}

Only where each run is and how its parameter names map are read here; whether the run
exists and fits this space is checked when the campaign opens
(``supervisor.study.warm_start``), before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.config.reader import Reader, kind_of
from supervisor.config.yaml_source import KeyPath

MAX_SOURCES = 64
KEYS = ("run", "rename")


@dataclass(frozen=True)
class WarmSource:
    run: str  # a run directory, or a study name under the runs directory
    rename: dict[str, str] = field(default_factory=dict)  # old parameter name -> new
    # Where errors about the run point: its place in the space file ("space.yaml:12:5:
    # warm_start[1].run"), found only when the campaign opens, after the file is read.
    where: str = field(default="warm_start", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "rename": dict(self.rename)}


def read_warm_start(reader: Reader, value: Any, params: set[str]) -> tuple[WarmSource, ...]:
    path: KeyPath = ("warm_start",)
    if value is None:
        return ()
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list):
        raise reader.err(path, f"expected a list of runs, got {kind_of(value)}")
    if len(value) > MAX_SOURCES:
        raise reader.err(path, f"at most {MAX_SOURCES} runs, got {len(value)}")
    sources = []
    for i, entry in enumerate(value):
        sources.append(_source(reader, entry, (*path, i), params))
    runs = [s.run for s in sources]
    for run in runs:
        if runs.count(run) > 1:
            raise reader.err((*path, runs.index(run)), f"run {run!r} is listed twice")
    return tuple(sources)


def _source(reader: Reader, entry: Any, path: KeyPath, params: set[str]) -> WarmSource:
    if isinstance(entry, str):
        return WarmSource(reader.string(entry, path), where=reader.err(path, "").located)
    spec = reader.mapping(entry, path, KEYS)
    if "run" not in spec:
        raise reader.err(path, "missing 'run' (a run directory or a study name)")
    run = reader.string(spec["run"], (*path, "run"))
    rename = spec.get("rename", {})
    if not isinstance(rename, dict):
        raise reader.err((*path, "rename"), f"expected a mapping old: new, got {kind_of(rename)}")
    for old, new in rename.items():
        where = (*path, "rename", old)
        if not isinstance(old, str) or not isinstance(new, str):
            raise reader.err(where, "expected parameter names (old: new)")
        if new not in params:
            raise reader.err(where, f"{new!r} is not a parameter of this space")
    if len(set(rename.values())) < len(rename):
        raise reader.err((*path, "rename"), "two old names map to one new name")
    return WarmSource(run, dict(rename), reader.err((*path, "run"), "").located)
