"""``supervisor export RUN --model N``: a kept trained model as a file to use without the
supervisor, and a manifest beside it naming the trial it came from.

``.keras`` is the framework's own format (``keras.saving.load_model(path,
compile=False)``: the file holds the architecture and weights; compiling needs only the
benchmark's loss for further training); ``.npz`` holds the named arrays the worker saved
(``Benchmark.model_arrays``), every network of the model. The manifest has the trial's
parameters, values, seed and benchmark options beside the run's own manifest, so the file
says which configuration it is wherever it is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import supervisor.atomic as atomic
from supervisor.commands.preflight import output_file, run_files
from supervisor.errors import UserError

MODEL_FORMATS = ("keras", "npz")


def model_format(output: Path | None, fmt: str | None) -> str:
    """The model file's format: ``--format``, else ``--output``'s suffix, else keras."""
    if fmt is not None and fmt not in MODEL_FORMATS:
        raise UserError(f"--format {fmt}: a model is exported as keras or npz")
    suffix = output.suffix[1:] if output is not None else ""
    if output is not None and suffix not in MODEL_FORMATS:
        raise UserError(f"--output {output}: a model file ends in .keras or .npz")
    if fmt is not None and suffix and suffix != fmt:
        raise UserError(f"--output {output}: a .{suffix} file name, but --format {fmt}")
    return fmt or suffix or "keras"


def trial_number(which: str) -> int | None:
    """``--model``: a trial number, or ``best`` (None: the best kept)."""
    if which.strip().lower() == "best":
        return None
    try:
        number = int(which)
    except ValueError:
        number = -1
    if number < 0:
        raise UserError(f"--model {which}: expected a trial number or 'best'"[:200])
    return number


def export_model(
    run: str, which: str, output: Path | None, fmt: str | None, runs_dir: Path
) -> list[Path]:
    """Write the model of trial ``which`` and its manifest; the paths written. Both paths
    are checked, and the model loaded, before either is written."""
    from supervisor.api import open_run
    from supervisor.benchmarks.trust import reading
    from supervisor.commands.kept_model import best_kept, load_model

    number = trial_number(which)
    kind = model_format(output, fmt)
    opened = open_run(run, runs_dir=runs_dir)
    if number is None:
        number = best_kept(opened.study, opened.run_dir)
    out = output or opened.run_dir / f"model-{number}.{kind}"
    own = run_files(opened.run_dir, opened.record)
    output_file(out, "--output", opened.run_dir, own)
    beside = out.with_name(f"{out.stem}.manifest.json")
    output_file(beside, "--output", opened.run_dir, own)
    space_file = opened.record.space_file
    with reading(opened.run_dir):  # another user's run: only an installed benchmark loads
        bench, model = load_model(opened.study, space_file, opened.run_dir, number)
        described = _described(opened.study, space_file, number, kind)
    manifest = {"model": described, "run": opened.manifest}
    with atomic.replacing(out) as tmp:
        _write(bench, model, tmp, kind)
    atomic.write(beside, json.dumps(manifest, indent=2, default=str) + "\n", mode=0o600)
    return [out, beside]


def _write(bench: Any, model: Any, path: Path, kind: str) -> None:
    import numpy as np

    from supervisor.benchmarks import MissingMethod

    try:
        if kind == "npz":
            np.savez(path, **bench.model_arrays(model))
        else:
            bench.save_model(model, path)
    except MissingMethod as exc:
        raise UserError(f"{exc}: export its arrays with --format npz") from None


def _described(study: Any, space_file: str, number: int, kind: str) -> dict[str, Any]:
    """Which configuration the file is: what ``supervisor rerun`` would train again."""
    from supervisor.commands.rerun import spec_for, trained_record

    rec = trained_record(study, number, "model")
    spec = spec_for(study, space_file, rec)
    return {
        "study": study.study_name,
        "trial": number,
        "format": kind,
        "benchmark": spec.benchmark_target,
        "options": spec.options,
        "params": spec.params,
        "values": dict(zip(spec.objectives, rec.values or (), strict=False)),
        "seed": spec.seed,
        "epochs": spec.epochs,
    }
