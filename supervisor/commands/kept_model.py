"""A kept trained model (``keep_models``), loaded back: ``Run.model(trial)``.

The model is rebuilt as its trial built it, from what the run stored (the benchmark and
its options, the trial's parameters and seed: its provenance, as ``supervisor rerun``
reads them), and given the arrays its worker saved (``Benchmark.load_model_arrays``). It
is built here, in the calling process: the benchmark's framework (Keras) must import.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import supervisor.rundir as rundir
from supervisor.errors import UserError
from supervisor.study import attrs

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from supervisor.benchmarks import Benchmark


def best_kept(study: optuna.Study, run_dir: Path) -> int:
    """The best trial whose model the run keeps; else why none is."""
    from supervisor.study.kept_models import kept_in

    kept = kept_in(study, run_dir)
    if kept:
        return kept[0]
    trials = study.get_trials(deepcopy=False)
    errors = {t.number: t.user_attrs.get(attrs.MODEL_ERROR) for t in trials}
    errors = {n: e for n, e in errors.items() if e}
    if errors:  # keep_models was set: its workers could not save them (a full disk)
        last = max(errors)
        raise UserError(
            f"study {study.study_name!r} keeps no trained model: {len(errors)} trial(s)"
            f" could not save theirs (trial {last}: {errors[last]})"[:600]
        )
    stored = study.user_attrs.get(attrs.CONFIG)
    if isinstance(stored, dict) and stored.get("keep_models"):  # set: why none is kept
        why = _none_kept(trials, run_dir)
        raise UserError(f"study {study.study_name!r} keeps no trained model: {why}")
    raise UserError(
        f"study {study.study_name!r} keeps no trained model: set keep_models: K in the"
        " space file (the K best trials' models are kept)"
    )


def _none_kept(trials: list[FrozenTrial], run_dir: Path) -> str:
    """Why a run with ``keep_models`` keeps none: it told the user to set what was set."""
    from optuna.trial import TrialState

    from supervisor.study.feasibility import feasible
    from supervisor.study.records import TrialRecord

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return "no trial has completed yet"
    feasible_ones = [t for t in complete if feasible(t)]
    if not feasible_ones:
        return (
            f"none of its {len(complete)} complete trial(s) keeps the constraints (the"
            " model of a trial that breaks them is never kept)"
        )
    records = [TrialRecord.from_frozen(t) for t in feasible_ones]
    if all(r.warm_start is not None or r.duplicate_of is not None for r in records):
        return "its complete trials were not trained here (told by warm start, or duplicates)"
    return f"no model file of its trials is left in {run_dir / rundir.TRIALS_DIR}"


def load_model(
    study: optuna.Study, space_file: str, run_dir: Path, number: int
) -> tuple[Benchmark, Any]:
    """The benchmark of the run and trial ``number``'s trained model."""
    from supervisor.benchmarks import registry
    from supervisor.benchmarks.checkpoint import load_npz
    from supervisor.commands.rerun import spec_for, trained_record
    from supervisor.execution.quiet_start import quiet_framework_start
    from supervisor.study.kept_models import kept_in

    rec = trained_record(study, number, "model")
    path = rundir.trial_dir(run_dir, number) / rundir.MODEL_FILE
    if rec.model is None or not path.is_file():  # none saved, or another study's file
        kept = kept_in(study, run_dir)
        shown = ", ".join(map(str, kept[:20])) if kept else "none"
        why = f": {rec.model_error}" if rec.model_error else ""  # a full disk
        raise UserError(
            f"trial {number}: its trained model was not kept{why} (keep_models keeps the"
            f" best trials' models; kept: {shown})"[:600]
        )
    spec = spec_for(study, space_file, rec)
    settings = rec.provenance.settings if rec.provenance else {}
    # The framework loads here, in the caller's process: not its start-up notices.
    with quiet_framework_start():
        bench = registry.load(spec.benchmark_target)(spec.options)
        with _dtype_policy(settings.get("dtype_policy")):
            model = bench.build_model(spec.params, spec.seed)
    _xla_as_trained(model, settings.get("xla"))
    try:
        bench.load_model_arrays(model, load_npz(path))
    except Exception as exc:  # a truncated file, or a model of other shapes
        raise UserError(
            f"{path}: cannot load trial {number}'s model: {type(exc).__name__}: {exc}"[:400]
        ) from None
    return bench, model


def benchmark_of(study: optuna.Study, space_file: str, number: int | None) -> Benchmark:
    """The run's benchmark with the options it searched with (the latest stored), or with
    those trial ``number`` trained with: a resume may have changed them since, and its
    model predicts (and its data loads) under its own."""
    from supervisor.benchmarks import registry
    from supervisor.commands.ensemble import as_searched
    from supervisor.commands.rerun import spec_for, trained_record

    if number is None:
        exp = as_searched(study, space_file)
        return registry.load(exp.benchmark_target)(exp.options)
    spec = spec_for(study, space_file, trained_record(study, number, "model"))
    return registry.load(spec.benchmark_target)(spec.options)


def _xla_as_trained(model: Any, xla: object) -> None:
    """XLA forced on or off as the trial's ``node: {xla}`` set it on its worker
    (``node.after_build``): "auto" leaves Keras' rule, which differs between a GPU worker
    and a CPU login node; ``xla: off`` is often there because the model fails under XLA."""
    from supervisor.execution import node

    if xla in node.XLA_CHOICES:
        node.after_build(model, node.NodeSettings(xla=xla))


@contextlib.contextmanager
def _dtype_policy(policy: object) -> Iterator[None]:
    """Keras' global dtype policy set to the one the trial was built under (its node's
    precision: mixed_bfloat16 on a recent GPU) while the model is built, as its worker
    set it, so that it computes as the trial did; the caller's policy is restored. A
    float32 trial too: a notebook that set mixed precision for its own work built the
    trial's model in it."""
    if not isinstance(policy, str) or (policy == "float32" and "keras" not in sys.modules):
        yield  # float32 is Keras' default; a framework other than Keras imports none
        return
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def ensemble_models(storage_url: str, space_file: str, run_dir: Path) -> list[Any]:
    """The trained models of the run's last built ensemble (``ensemble.json``), in its
    members' order: search trials kept among the best, and the members trained for the
    ensemble (every one is kept when the space file has ``keep_models``)."""
    import json

    from supervisor.ensemble.build import SUMMARY_FILE
    from supervisor.study.storage import load_study

    summary = run_dir / rundir.ENSEMBLE_DIR / SUMMARY_FILE
    try:
        data = json.loads(summary.read_text())
        search = str(data["study"])
        wanted = [(str(m["study"]), int(m["trial"])) for m in data["members"]]
    except FileNotFoundError:
        raise UserError(f"{run_dir}: no ensemble was built (supervisor ensemble RUN)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{summary}: unreadable ({type(exc).__name__}: {exc})"[:300]) from None

    def folder(study_name: str) -> Path:  # the search's run directory, or its members'
        return run_dir if study_name == search else run_dir / rundir.ENSEMBLE_DIR

    missing = [
        (name, number)
        for name, number in dict.fromkeys(wanted)
        if not (rundir.trial_dir(folder(name), number) / rundir.MODEL_FILE).is_file()
    ]
    if missing:
        raise UserError(_not_kept(missing, search))
    studies: dict[str, optuna.Study] = {}
    loaded: dict[tuple[str, int], Any] = {}  # greedy takes a member more than once: one copy
    for name, number in wanted:
        if name not in studies:
            studies[name] = load_study(storage_url, name)
        if (name, number) not in loaded:
            loaded[name, number] = load_model(studies[name], space_file, folder(name), number)[1]
    return [loaded[key] for key in wanted]


def _not_kept(missing: list[tuple[str, int]], search: str) -> str:
    """Why the ensemble's ``missing`` members have no model, and what keeps them: it said
    to set keep_models and build it again, but building it again reuses the members'
    saved predictions and makes no model, so a user who did so got the same error."""
    of_search = [f"#{n}" for name, n in missing if name == search]
    trained = [f"#{n}" for name, n in missing if name != search]
    why = []
    if of_search:
        why.append(f"search trial(s) {', '.join(of_search[:10])} not among the best it kept")
    if trained:
        why.append(f"member(s) {', '.join(trained[:10])} trained while it kept no models")
    return (
        f"the ensemble's members have no kept model: {'; '.join(why)}. Building it again"
        " reuses their saved predictions and makes no model; a search whose keep_models is"
        " at least the ensemble's pool (topk: its size) keeps every member's"
    )
