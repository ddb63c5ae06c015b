"""``supervisor rerun RUN TRIAL``: train one stored trial again, here, and compare.

Everything comes from the run itself, not from files that may have changed since: the
resolved space stored with the study, the trial's parameters, the seeds it trained with,
its threads and ranks and the node settings (its provenance). The trial runs in a fresh
trial process, as on a worker, and writes nothing into the run. Its final metrics are
compared with the stored ones; the costs (seconds, memory, latency) are measured again,
not compared. Where the framework is deterministic on the same node (NumPy models, Keras
on CPU with one thread per trial) the result is identical to the bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.errors import UserError

if TYPE_CHECKING:
    import optuna

    from supervisor.execution.node import NodeSettings
    from supervisor.execution.trial import TrialResult, TrialSpec
    from supervisor.study.records import TrialRecord

# Measured again on every run: never expected to repeat.
NOT_COMPARED = ("data_seconds", "rss_mb")


@dataclass
class Comparison:
    trial: int
    stored: dict[str, float]  # the stored final metrics that a rerun should repeat
    rerun: dict[str, float]
    result: TrialResult

    @property
    def identical(self) -> bool:
        return self.result.status == "complete" and self.stored == {
            k: self.rerun.get(k) for k in self.stored
        }

    def lines(self) -> list[str]:
        if self.result.status != "complete":
            return [f"trial {self.trial} {self.result.status} on rerun: {self.result.error}"]
        width = max(len(k) for k in self.stored) if self.stored else 6
        rows = [f"{'metric':<{width}}  {'stored':>22}  {'rerun':>22}  difference"]
        for name, old in sorted(self.stored.items()):
            new = self.rerun.get(name)
            diff = "missing" if new is None else ("same" if new == old else f"{new - old:+.3g}")
            shown = "-" if new is None else repr(new)
            rows.append(f"{name:<{width}}  {old!r:>22}  {shown:>22}  {diff}")
        verdict = (
            f"trial {self.trial}: reproduced bit-for-bit"
            if self.identical
            else f"trial {self.trial}: the rerun differs (threads > 1, GPU kernels or another"
            " node make training non-deterministic)"
        )
        return [*rows, verdict]


def trained_record(study: optuna.Study, number: int, use: str = "rerun") -> TrialRecord:
    """The stored record of a trial that was trained to completion in this run; ``use``:
    what the caller does with it ("rerun", "model": load its kept model)."""
    from optuna.trial import TrialState

    from supervisor.study.records import TrialRecord

    trials = study.get_trials(deepcopy=False)
    found = next((t for t in trials if t.number == number), None)
    if found is None:
        last = f" (trials 0 to {len(trials) - 1})" if trials else " (it has no trials)"
        raise UserError(f"trial {number}: no such trial in study {study.study_name!r}{last}")
    rec = TrialRecord.from_frozen(found)
    if rec.warm_start is not None:
        raise UserError(f"trial {number} was not trained here: told from {rec.warm_start}")
    if rec.duplicate_of is not None:
        raise UserError(
            f"trial {number} was not trained: it repeats trial {rec.duplicate_of}; {use} that"
        )
    if rec.state != TrialState.COMPLETE:
        why = "has a trained model" if use == "model" else "has final metrics to compare"
        raise UserError(f"trial {number} is {rec.state.name}: only a complete trial {why}")
    if rec.provenance is None or rec.provenance.seed is None:
        raise UserError(
            f"trial {number} has no provenance (its seeds were not recorded: a run made"
            " before this supervisor recorded them)"
        )
    return rec


def spec_for(study: optuna.Study, space_file: str, rec: TrialRecord) -> TrialSpec:
    from supervisor.commands.ensemble import as_searched
    from supervisor.execution.trial import TrialSpec

    exp = as_searched(study, space_file)
    prov = rec.provenance
    assert prov is not None and prov.seed is not None
    # What the trial was given, where it recorded it: a resume may have changed the space.
    inputs = dict(prov.inputs) if prov.inputs is not None else {**exp.fixed, **rec.params}
    options = dict(prov.options) if prov.options is not None else exp.options
    return TrialSpec(
        study_name=study.study_name,
        trial_number=rec.number,
        params=inputs,
        benchmark=exp.benchmark,
        benchmark_target=exp.benchmark_target,
        options=options,
        epochs=prov.epochs or rec.member_epochs or exp.budget.epochs,
        seed=prov.seed,
        data_seed=prov.data_seed if prov.data_seed is not None else exp.seed,
        objectives=tuple(exp.metric_names),
        threads=prov.threads or 1,
        ranks=prov.ranks or 1,
        run_dir=None,  # nothing is written into the run
        node=_node_as_ran(prov.settings, exp.node),
        time_limit=exp.budget.trial_timeout,
    )


def _node_as_ran(settings: Mapping[str, Any], searched: NodeSettings) -> NodeSettings:
    """The node settings the trial recorded (XLA, precision), each where it did; a resume
    may have changed the space's ``node:`` since, and the rerun trained with the new."""
    from dataclasses import replace

    from supervisor.execution.node import PRECISIONS, XLA_CHOICES

    xla, precision = settings.get("xla"), settings.get("precision")
    node = replace(searched, xla=xla) if xla in XLA_CHOICES else searched
    return replace(node, precision=precision) if precision in PRECISIONS else node


def comparable(metrics: object) -> dict[str, float]:
    from supervisor.config.space import COST_METRICS

    if not isinstance(metrics, dict):
        return {}
    skip = {*COST_METRICS, *NOT_COMPARED}
    return {k: float(v) for k, v in metrics.items() if k not in skip}


def rerun(study: optuna.Study, space_file: str, number: int) -> Comparison:
    """Train trial ``number`` of ``study`` again in a fresh trial process; ``space_file``
    is the run's, read only when the study holds no resolved space (older runs)."""
    from supervisor.execution.quiet_start import quiet_framework_start

    rec = trained_record(study, number)
    spec = spec_for(study, space_file, rec)
    # The trial process's stderr comes through this one's: TensorFlow's start-up notices
    # (oneDNN is on, once per library) are left out, as where a command loads it itself.
    with quiet_framework_start():
        result = _train(spec)
    return Comparison(number, comparable(dict(rec.metrics)), comparable(result.metrics), result)


def _train(spec: TrialSpec) -> TrialResult:
    """The trial trained in a fresh trial process (its ranks, where it had several)."""
    if spec.ranks > 1:
        from supervisor.execution.ranks.launch import run_ranked_trial

        return run_ranked_trial(spec, spec.ranks)
    from supervisor.execution.trial_host import TrialHost

    host = TrialHost()
    try:
        return host.run(spec)
    finally:
        host.stop()
        if host.tail is not None:  # its last lines forwarded while the notices are left out
            host.tail.join()
