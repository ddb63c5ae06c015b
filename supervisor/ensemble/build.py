"""Build a campaign's deep ensemble: select members, train the missing ones, aggregate,
write ``ensemble.json`` (the command writes the UQ report).

Run by ``supervisor search`` after the search when the space file has an ``ensemble:``
section (on the same cluster), and by ``supervisor ensemble RUN`` at any time after.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import supervisor.atomic as atomic
import supervisor.rundir as rundir
from supervisor.benchmarks import ensemble_problem, registry
from supervisor.config.ensemble import EnsembleConfig
from supervisor.ensemble import members as members_mod
from supervisor.ensemble.aggregate import Built, Finalist, Member, evaluate, other_inputs
from supervisor.errors import Interrupted, UserError

if TYPE_CHECKING:
    import optuna

    from supervisor.config.experiment import Experiment

SUMMARY_FILE = "ensemble.json"


def resolve_select(config: EnsembleConfig, kind: str) -> str:
    if config.select != "auto":
        if config.select == "greedy" and kind != "classification":
            raise UserError(
                f"ensemble select 'greedy' needs class probabilities; this benchmark's "
                f"ensembles are {kind}: use topk or seeds"
            )
        return config.select
    return "greedy" if kind == "classification" else "topk"


def build(
    exp: Experiment,
    config: EnsembleConfig,
    study: optuna.Study,
    storage_url: str,
    run_dir: Path,
    cluster: Callable[[], Any],
    display: Any,
) -> Built:
    """``cluster()`` returns a context manager yielding a ``ClusterHandle``; it is entered
    only when members must be trained."""
    bench_cls = registry.load(exp.benchmark_target)
    problem = ensemble_problem(bench_cls)
    kind = bench_cls.ensemble_kind
    if problem or kind is None:
        raise UserError(problem or f"benchmark {exp.benchmark!r} does not support ensembles")
    select = resolve_select(config, kind)
    maximize = exp.objectives[0].direction == "maximize"
    ranked = members_mod.ranked(study, maximize)
    if not ranked:
        kept = " that keeps the constraints" if exp.constraints else ""
        raise UserError(
            f"study {study.study_name!r} has no complete trial{kept} to build an ensemble of"
        )
    take = {"topk": config.size, "greedy": config.pool, "seeds": config.candidates}[select]
    candidates = ranked[:take]
    seeds = config.size if select == "seeds" else 1
    wanted = members_mod.wanted(exp, candidates, seeds, reseeded=len(candidates))
    source = members_mod.MemberSource(exp, study, run_dir)
    trained_study = _member_study(study, storage_url)
    found = {w: source.find(w, trained_study) for w in wanted}
    missing = [w for w, m in found.items() if m is None]
    exp = _with_ensemble(exp, config)
    if missing:
        of_search = sum(1 for m in found.values() if m is not None and m.study == study.study_name)
        sources = {t.number: t for t in candidates}
        loads = sum(
            1 for w in missing if members_mod.loads_kept(exp, run_dir, sources[w.source], w)
        )
        loaded = f"loading {loads} the search kept, " if loads else ""
        display.log(
            f"Ensemble: {loaded}training {len(missing) - loads} member(s); {of_search} reused"
            f" from the search, {len(wanted) - len(missing) - of_search} trained before"
        )
        with cluster() as handle:
            training = members_mod.train_missing(
                exp, missing, sources, storage_url, run_dir, handle, display
            )
        if training.stopped_by in ("interrupt", "requested"):  # not of the members done so far
            signal = training.signal or "SIGINT"
            by = training.early if training.stopped_by == "requested" else signal
            raise Interrupted(
                f"ensemble of {study.study_name!r} not built: stopped by {by} while its"
                " members trained; those trained are kept, and building it again trains"
                " the rest",
                signal,
            )
        trained_study = _member_study(study, storage_url)
        found = {w: source.find(w, trained_study) for w in wanted}
    have: list[tuple[members_mod.Wanted, Member]] = []
    failed: list[str] = []
    for w, m in found.items():  # each member's predictions scanned once
        if m is not None and _predicted(m):
            have.append((w, m))
        else:
            why = _NOT_TRAINED if m is None else _NOT_FINITE
            failed.append(f"search #{w.source}, seed {w.seed} ({why})")
    have, excluded = members_mod.judged(exp, have, study.study_name, trained_study)
    if excluded:
        display.log(
            f"Ensemble: {len(excluded)} member(s) left out, breaking the constraints: "
            + "; ".join(excluded[:5])
        )
    others = other_inputs([m for _, m in have])
    if others:  # never the first, the best the search ranked: the ensemble is of its data
        of = f"predicting other inputs than {have[0][1].label}'s (other benchmark options)"
        left = [have[i][1].label for i in others]
        display.log(f"Ensemble: {len(left)} member(s) left out, {of}: " + "; ".join(left[:5]))
        excluded += [f"{label}: {of}" for label in left]
        have = [h for i, h in enumerate(have) if i not in others]
    if not have:
        if excluded:
            raise UserError(f"no ensemble member keeps the constraints: {excluded[0]}")
        raise UserError(
            f"no ensemble member could be used: {', '.join(failed[:5])}"
            " (see the member study's failures)"[:400]
        )
    finalists: list[Finalist] = []
    if select == "seeds" and len(candidates) > 1:
        searched = {t.number: t.values[0] if t.values else None for t in candidates}
        finalists, have = _best_finalist(have, searched, maximize)
        best = finalists[0]
        display.log(
            f"Ensemble: of the {len(finalists)} best configurations, each with {seeds}"
            f" seeds, search #{best.trial} has the best mean ({best.mean:.4g})"
        )
    chosen = _select(select, [m for _, m in have], config.size)
    bench = bench_cls(exp.options)
    try:
        evaluation = evaluate(
            kind,
            chosen,
            maximize=maximize,
            decode=getattr(bench, "decode", None),
            identity=getattr(bench, "read_identity", None),
        )
    except ValueError as exc:  # members that do not combine: one line, not a traceback
        raise UserError(f"ensemble of {study.study_name!r} not built: {exc}") from None
    distinct = {id(m): m for m in chosen}.values()  # a kept model loaded is the search's
    trained = sum(1 for m in distinct if m.study != study.study_name and not m.loaded)
    built = Built(
        config=config,
        select=select,
        evaluation=evaluation,
        members=chosen,
        trained=trained,
        reused=len({id(m) for m in chosen}) - trained,
        failed=failed,
        excluded=excluded,
        summary_path=run_dir / rundir.ENSEMBLE_DIR / SUMMARY_FILE,
        report_path=None,
        finalists=finalists,
    )
    _write_summary(built, exp)
    return built


_NOT_TRAINED = "its training failed"
_NOT_FINITE = "its predictions hold NaN or infinite values"


def _predicted(member: Member) -> bool:
    """A member whose predictions diverged (NaN, inf) is left out, not the ensemble."""
    return all(
        np.all(np.isfinite(a))
        for a in map(np.asarray, member.outputs.values())
        if a.dtype.kind in "fc"
    )


def _member_study(search: optuna.Study, storage_url: str) -> optuna.Study | None:
    import optuna

    from supervisor.study.storage import open_storage

    name = members_mod.member_study_name(search.study_name)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage_url))
    except KeyError:
        return None


def _with_ensemble(exp: Experiment, config: EnsembleConfig) -> Experiment:
    from dataclasses import replace

    return replace(exp, ensemble=config)  # members keep their outputs


def _best_finalist(
    have: list[tuple[members_mod.Wanted, Member]],
    searched: dict[int, float | None],
    maximize: bool,
) -> tuple[list[Finalist], list[tuple[members_mod.Wanted, Member]]]:
    """Each re-evaluated configuration (``searched``: search trial -> the value it
    reported there) with its members' values, the best mean first (a configuration none of
    whose members trained comes last), and the members of the best."""
    values: dict[int, list[float]] = {n: [] for n in searched}
    for w, m in have:
        if m.value is not None and math.isfinite(m.value):
            values[w.source].append(m.value)
    sign = -1.0 if maximize else 1.0
    finalists = [Finalist(n, tuple(v), searched[n]) for n, v in values.items()]
    finalists.sort(key=lambda f: sign * f.mean if f.values else math.inf)
    return finalists, [(w, m) for w, m in have if w.source == finalists[0].trial]


def _select(select: str, pool: list[Member], size: int) -> list[Member]:
    if select != "greedy":
        return pool[:size] if select == "topk" else pool
    from supervisor.ensemble import uq

    probs = np.stack([np.asarray(m.outputs["val"], np.float64) for m in pool])
    y = np.asarray(pool[0].outputs["y_val"]).astype(np.int64)
    return [pool[i] for i in uq.greedy_nll_selection(probs, y, size)]


def _write_summary(built: Built, exp: Experiment) -> None:
    ev = built.evaluation
    data = {
        "study": exp.study_name,
        "benchmark": exp.benchmark,
        "kind": ev.kind,
        "select": built.select,
        "config": built.config.to_dict(),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "members": [
            {
                "label": m.label,
                "study": m.study,
                "trial": m.trial,
                "value": m.value,
                "test": _finite(scores),
            }
            for m, scores in zip(built.members, ev.members, strict=True)
        ],
        "trained": built.trained,
        "reused": built.reused,
        "failed": built.failed,
        "excluded": built.excluded,
        "ensemble": _finite(ev.ensemble),
        "best_member": {
            "label": built.members[ev.best_member_index].label,
            **_finite(ev.best_member),
        },
        "by_size": [_finite(s) for s in ev.by_size],
        "finalists": [
            {
                "trial": f.trial,
                "search_value": f.search_value,
                "mean": f.mean if f.values else None,
                "values": list(f.values),
            }
            for f in built.finalists
        ],
        "temperature_scaled": {k: _finite(v) for k, v in ev.calibrated.items()},
    }
    path = built.summary_path
    atomic.write(path, json.dumps(data, indent=2) + "\n")


def _finite(scores: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(v) else None) for k, v in scores.items()}
