"""A kept trained model (``keep_models``), loaded back: ``Run.model(trial)``.

The model is rebuilt as its trial built it, from what the run stored (the benchmark and
its options, the trial's parameters and seed: its provenance, as ``supervisor rerun``
reads them), and given the arrays its worker saved (``Benchmark.load_model_arrays``). It
is built here, in the calling process: the benchmark's framework (Keras) must import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.errors import UserError

if TYPE_CHECKING:
    import optuna

    from supervisor.benchmarks import Benchmark


def load_model(
    study: optuna.Study, space_file: str, run_dir: Path, number: int
) -> tuple[Benchmark, Any]:
    """The benchmark of the run and trial ``number``'s trained model."""
    import numpy as np

    from supervisor.benchmarks import registry
    from supervisor.commands.rerun import spec_for, trained_record
    from supervisor.study.kept_models import kept_in

    rec = trained_record(study, number)
    path = rundir.trial_dir(run_dir, number) / rundir.MODEL_FILE
    if not path.is_file():
        kept = kept_in(study, run_dir)
        shown = ", ".join(map(str, kept[:20])) if kept else "none"
        raise UserError(
            f"trial {number}: its trained model was not kept (keep_models keeps the best"
            f" trials' models; kept: {shown})"
        )
    spec = spec_for(study, space_file, rec)
    bench = registry.load(spec.benchmark_target)(spec.options)
    model = bench.build_model(spec.params, spec.seed)
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
        bench.load_model_arrays(model, arrays)
    except Exception as exc:  # a truncated file, or a model of other shapes
        raise UserError(
            f"{path}: cannot load trial {number}'s model: {type(exc).__name__}: {exc}"[:400]
        ) from None
    return bench, model
