"""The search report: one self-contained HTML page per campaign, drawn from its Optuna study.

The figures are Optuna's own plotly visualizations. They are drawn from an in-memory copy
of the study ("view") holding every trial with only a few small user attributes: Optuna
puts all user attributes of a trial into its hover text (timeline, Pareto front), and a
supervisor trial carries its whole per-epoch history and traceback there, which would make
the page grow by megabytes per thousand trials. The copy also means the study's storage
(a database or journal, maybe remote) is read once, not once per figure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import math
import os
import secrets
import warnings
from collections import Counter
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import attrs
from supervisor.report.page import Html, Page, details, esc, kv_table, note, table

if TYPE_CHECKING:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial

__all__ = ["render_search_report", "write_search_report"]

logger = logging.getLogger(__name__)

# Caps that keep a 10,000-trial report small and quick to draw.
BEST_ROWS = 20
PARETO_ROWS = 50
FAILURE_ROWS = 50
CURVE_TRIALS = 100  # one plotly trace per learning curve: browsers slow down with thousands
PARALLEL_TRIALS = 1000  # Optuna draws one plotly trace per line: slow beyond ~1,000
PARETO_PLOT_TRIALS = 2000  # points of the Pareto front plot, each with a hover text
TIMELINE_TRIALS = 2000  # most recent trials on the timeline (each bar carries a hover text)
FANOVA_TRIALS = 100  # fANOVA: ~1 s at 100 trials, ~30 s at 1,000; it grows faster than n
ERROR_CHARS = 500
HOVER_ERROR_CHARS = 160
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
# User attributes copied into the view, i.e. into the figures' hover texts.
_HOVER_ATTRS = ("worker", "duration_s", "failure", "error_type")


def write_search_report(
    study: optuna.Study, path: Path, run_info: Mapping[str, Any] | None = None
) -> Path:
    """Write the HTML report of ``study`` to ``path`` (atomically) and return ``path``."""
    path = Path(path)
    text = render_search_report(study, run_info)
    _atomic_write(path, text)
    return path


def render_search_report(study: optuna.Study, run_info: Mapping[str, Any] | None = None) -> str:
    """The report of ``study`` as one HTML document."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings(), _quiet_nonfinite():
        # set_metric_names and some plots are "experimental"; the user can do nothing about it.
        warnings.simplefilter("ignore", ExperimentalWarning)
        camp = _Campaign.load(study)
        n = len(camp.trials)
        page = Page(
            f"Search report: {camp.study_name}",
            f"{n} trial{'s' if n != 1 else ''} · {camp.objectives_text}",
        )
        page.section("summary", "Summary", _summary(camp, run_info or {}))
        page.section("best", "Best trials", _best_trials(camp))
        if camp.multi:
            page.section("pareto", "Pareto front", _pareto(camp, page))
        page.section("history", "Optimization history", _history(camp, page))
        page.section("parallel", "Parallel coordinates", _parallel(camp, page))
        page.section("importance", "Parameter importances", _importances(camp, page))
        page.section("curves", "Learning curves", _curves(camp, page))
        page.section("timeline", "Timeline", _timeline(camp, page))
        if camp.failed:
            page.section("failures", "Failures", _failures(camp))
        return page.render()


@contextlib.contextmanager
def _quiet_nonfinite() -> Iterator[None]:
    """Optuna logs a line per trial with an inf value, in every figure: thousands, where
    training diverges often. The summary counts them once instead."""
    optuna_logger = logging.getLogger("optuna.visualization._utils")

    def keep(record: logging.LogRecord) -> bool:
        return "omitted in visualization" not in record.getMessage()

    optuna_logger.addFilter(keep)
    try:
        yield
    finally:
        optuna_logger.removeFilter(keep)


# -- the study, read once ---------------------------------------------------------------


@dataclass
class _Campaign:
    study_name: str
    user_attrs: dict[str, Any]
    directions: list[str]  # "minimize" | "maximize", one per objective
    names: list[str]  # objective names
    trials: list[FrozenTrial]
    ranked: list[FrozenTrial]  # complete, finite values; best first by the first objective
    failed: list[FrozenTrial]
    curves: list[int]  # numbers of the trials whose learning curves are drawn
    n_with_curves: int
    view: optuna.Study

    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    def view_of(self, numbers: Container[int]) -> optuna.Study:
        """A view in which only the trials ``numbers`` are there to plot."""
        return _make_view(
            self.study_name, self.view.directions, self.trials, self.names, only=numbers
        )

    @functools.cached_property
    def pareto(self) -> list[FrozenTrial]:
        """study.best_trials as the original trials, in the order of the first objective."""
        order = {t.number: i for i, t in enumerate(self.ranked)}
        numbers = sorted((t.number for t in self.view.best_trials), key=lambda n: order.get(n, n))
        by_number = {t.number: t for t in self.trials}
        return [by_number[n] for n in numbers if n in by_number]

    @property
    def objectives_text(self) -> str:
        return ", ".join(f"{m} ({d})" for m, d in zip(self.names, self.directions, strict=True))

    @classmethod
    def load(cls, study: optuna.Study) -> _Campaign:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        directions = [d.name.lower() for d in study.directions]
        user_attrs = dict(study.user_attrs)
        names = _objective_names(user_attrs, study, len(directions))
        maximize = directions[0] == "maximize"
        complete = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE
            and t.values is not None
            and all(math.isfinite(v) for v in t.values)
        ]
        ranked = sorted(
            complete, key=lambda t: (-t.values[0] if maximize else t.values[0], t.number)
        )
        curves, n_with_curves = _pick_curves(trials, ranked)
        return cls(
            study_name=study.study_name,
            user_attrs=user_attrs,
            directions=directions,
            names=names,
            trials=trials,
            ranked=ranked,
            failed=[t for t in trials if t.state == TrialState.FAIL],
            curves=curves,
            n_with_curves=n_with_curves,
            view=_make_view(study.study_name, study.directions, trials, names, curves=set(curves)),
        )


def _objective_names(user_attrs: Mapping[str, Any], study: optuna.Study, n: int) -> list[str]:
    for names in (user_attrs.get(attrs.OBJECTIVES), study.metric_names):
        if isinstance(names, (list, tuple)) and len(names) == n:
            return [str(name) for name in names]
    return [f"objective {i}" for i in range(n)]


def _pick_curves(
    trials: Sequence[FrozenTrial], ranked: Sequence[FrozenTrial]
) -> tuple[list[int], int]:
    """Learning curves to draw: all of them, or the best half plus the most recent others."""
    from optuna.trial import TrialState

    drawable = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    with_curves = [t.number for t in trials if t.intermediate_values and t.state in drawable]
    if len(with_curves) <= CURVE_TRIALS:
        return with_curves, len(with_curves)
    chosen = [t.number for t in ranked if t.intermediate_values][: CURVE_TRIALS // 2]
    taken = set(chosen)
    for number in reversed(with_curves):
        if len(chosen) >= CURVE_TRIALS:
            break
        if number not in taken:
            chosen.append(number)
    return sorted(chosen), len(with_curves)


def _make_view(
    study_name: str,
    directions: Sequence[StudyDirection],
    trials: Sequence[FrozenTrial],
    names: list[str],
    *,
    curves: Container[int] = (),
    only: Container[int] | None = None,
) -> optuna.Study:
    """An in-memory copy of the study with light trials, for Optuna's plot functions.

    ``trials`` must be all trials of the study, in order: the storage numbers them 0, 1, ...
    Trials not in ``only`` become empty WAITING trials, which no plot of complete trials
    shows, so that a view of some trials still labels them with their own numbers.
    """
    import optuna

    storage = optuna.storages.InMemoryStorage()
    study_id = storage.create_new_study(list(directions), study_name)
    # Straight into the storage: no validation, the trials come from a storage already.
    for trial in trials:
        if only is None or trial.number in only:
            light = _light(trial, trial.number in curves)
        else:
            light = _placeholder(trial.number)
        storage.create_new_trial(study_id, template_trial=light)
    view = optuna.load_study(
        study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(0)
    )
    view.set_metric_names(names)
    return view


def _placeholder(number: int) -> FrozenTrial:
    from optuna.trial import TrialState

    return _view_trial_class()(
        number=number,
        state=TrialState.WAITING,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )


@functools.cache
def _view_trial_class() -> type[FrozenTrial]:
    from optuna.trial import FrozenTrial

    class ViewTrial(FrozenTrial):
        """A trial of the view, never copied.

        Optuna's plot functions deep-copy every trial of the study several times
        (``study.trials``: once per parameter for the importance plot alone), seconds at
        10,000 trials. Nothing mutates these private trials, so a copy can be the trial.
        """

        def __deepcopy__(self, memo: dict[int, Any]) -> ViewTrial:
            return self

    return ViewTrial


def _light(trial: FrozenTrial, keep_curve: bool) -> FrozenTrial:
    user_attrs = trial.user_attrs
    small: dict[str, Any] = {
        k: user_attrs[k] for k in _HOVER_ATTRS if _is_scalar(user_attrs.get(k, object()))
    }
    error = user_attrs.get("error")
    if isinstance(error, str) and error:
        small["error"] = _clip(error, HOVER_ERROR_CHARS)
    system_attrs = trial.system_attrs
    # Constraints decide feasibility colours in the plots.
    system = {"constraints": system_attrs["constraints"]} if "constraints" in system_attrs else {}
    return _view_trial_class()(
        number=trial.number,
        state=trial.state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=dict(trial.params),
        distributions=dict(trial.distributions),
        user_attrs=small,
        system_attrs=system,
        intermediate_values=dict(trial.intermediate_values) if keep_curve else {},
        trial_id=trial._trial_id,
    )


# -- summary and tables ------------------------------------------------------------------


def _summary(camp: _Campaign, run_info: Mapping[str, Any]) -> list[Html]:
    states = Counter(t.state.name for t in camp.trials)
    counts = table(
        [*STATES, "total"],
        [[*(states.get(s, 0) for s in STATES), len(camp.trials)]],
        numeric=range(len(STATES) + 1),
    )
    finished = [t for t in camp.trials if t.state.is_finished()]
    durations = [d for d in map(_duration, finished) if d is not None]
    starts = [t.datetime_start for t in camp.trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in finished if t.datetime_complete is not None]
    rows: list[tuple[object, object]] = [
        ("study", camp.study_name),
        ("objectives", camp.objectives_text),
    ]
    if durations:
        total = sum(durations)
        rows.append(("total trial time", f"{_fmt_seconds(total)} over {len(durations)} trials"))
        rows.append(("mean trial time", _fmt_seconds(total / len(durations))))
    if starts:
        rows.append(("first trial started", _fmt_time(min(starts))))
    if ends:
        rows.append(("last trial finished", _fmt_time(max(ends))))
    nonfinite = states.get("COMPLETE", 0) - len(camp.ranked)
    if nonfinite:
        text = f"{nonfinite} complete trials, left out of the rankings and value plots"
        rows.append(("non-finite values", text))
    if camp.failed:
        kinds = Counter(str(t.user_attrs.get(attrs.FAILURE, "unknown")) for t in camp.failed)
        rows.append(("failures", ", ".join(f"{n} {k}" for k, n in kinds.most_common())))
    out = [Html("<h3>Trials</h3>"), counts, kv_table(rows)]

    if not camp.ranked:
        out.append(note("No complete trial yet."))
    elif not camp.multi:
        best = camp.ranked[0]
        out.append(Html(f"<h3>Best trial: #{best.number}</h3>"))
        out.append(kv_table(_trial_rows(camp, best)))
    else:
        pareto = camp.pareto
        shown = f", the first {PARETO_ROWS} shown" if len(pareto) > PARETO_ROWS else ""
        out.append(Html(f"<h3>Pareto-optimal trials ({len(pareto)}{esc(shown)})</h3>"))
        out.append(_trials_table(camp, pareto[:PARETO_ROWS]))

    if run_info:
        out.append(Html("<h3>Run</h3>"))
        out.append(kv_table((k, _fmt_info(k, v)) for k, v in run_info.items()))
    config = camp.user_attrs.get(attrs.CONFIG)
    if config:
        out.append(details("Experiment configuration", Html(f"<pre>{esc(_dump(config))}</pre>")))
    return out


def _trial_rows(camp: _Campaign, trial: FrozenTrial) -> list[tuple[object, object]]:
    rows: list[tuple[object, object]] = [
        (name, _fmt(v)) for name, v in zip(camp.names, trial.values or (), strict=False)
    ]
    # Full precision: these are the values to copy into a configuration.
    rows += [
        (f"param {k}", repr(v) if isinstance(v, float) else v) for k, v in trial.params.items()
    ]
    duration = _duration(trial)
    if duration is not None:
        rows.append(("duration", _fmt_seconds(duration)))
    if _worker(trial):
        rows.append(("worker", _worker(trial)))
    if trial.datetime_complete is not None:
        rows.append(("finished", _fmt_time(trial.datetime_complete)))
    return rows


def _best_trials(camp: _Campaign) -> list[Html]:
    if not camp.ranked:
        return [note("No complete trial yet.")]
    best = camp.ranked[:BEST_ROWS]
    head = (
        f"The {len(best)} best of {len(camp.ranked)} complete trials by {camp.names[0]} "
        f"({camp.directions[0]})."
    )
    return [note(head), _trials_table(camp, best)]


def _trials_table(camp: _Campaign, trials: Sequence[FrozenTrial]) -> Html:
    params = sorted({k for t in trials for k in t.params})
    n_obj = len(camp.names)
    numeric_params = [
        i
        for i, k in enumerate(params)
        if all(_is_number(t.params[k]) for t in trials if k in t.params)
    ]
    rows = [
        [
            t.number,
            *(_fmt(v) for v in (t.values or [None] * n_obj)),
            *(_fmt(t.params[k]) if k in t.params else "" for k in params),
            _fmt_seconds(d) if (d := _duration(t)) is not None else "",
            _worker(t),
        ]
        for t in trials
    ]
    numeric = [0, *range(1, 1 + n_obj), *(1 + n_obj + i for i in numeric_params)]
    numeric.append(1 + n_obj + len(params))
    return table(["trial", *camp.names, *params, "duration", "worker"], rows, numeric=numeric)


def _failures(camp: _Campaign) -> list[Html]:
    failed = camp.failed
    groups = Counter(
        (str(t.user_attrs.get(attrs.FAILURE, "")), str(t.user_attrs.get("error_type", "")))
        for t in failed
    )
    kinds = table(
        ["failure", "error type", "trials"],
        [[k, e, n] for (k, e), n in groups.most_common(20)],
        numeric=[2],
    )
    recent = sorted(failed, key=lambda t: t.number, reverse=True)[:FAILURE_ROWS]
    shown = (
        f"The {len(recent)} most recent of {len(failed)} failed trials."
        if len(failed) > len(recent)
        else f"{len(failed)} failed trial{'s' if len(failed) != 1 else ''}."
    )
    rows = [
        [
            t.number,
            t.user_attrs.get(attrs.FAILURE, ""),
            t.user_attrs.get("error_type", ""),
            Html(f'<div class="error">{esc(_clip(_error(t), ERROR_CHARS))}</div>'),
            _worker(t),
        ]
        for t in recent
    ]
    listing = table(["trial", "failure", "error type", "error", "worker"], rows, numeric=[0])
    return [kinds, note(shown), listing]


# -- figures -----------------------------------------------------------------------------

_NO_COMPLETE = "No complete trial yet: nothing to plot."


def _draw(page: Page, what: str, build: Callable[[], Any], height: int = 450) -> Html:
    """One figure, or a short note where Optuna or plotly cannot draw it."""
    try:
        fig = build()
        fig.update_layout(template="plotly_white", height=height)
        return page.figure(fig)
    except Exception as exc:
        logger.warning("report: could not draw the %s: %s: %s", what, type(exc).__name__, exc)
        return note(f"Could not draw the {what}: {type(exc).__name__}: {_clip(str(exc), 300)}")


def _history(camp: _Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(_NO_COMPLETE)]
    from optuna.visualization import plot_optimization_history

    if not camp.multi:
        return [
            _draw(
                page,
                "optimization history",
                lambda: plot_optimization_history(camp.view, target_name=camp.names[0]),
            )
        ]
    out = []
    for i, name in enumerate(camp.names):

        def build(i: int = i, name: str = name) -> Any:
            fig = plot_optimization_history(
                camp.view, target=lambda t: t.values[i], target_name=name
            )
            return fig.update_layout(title=f"Optimization history: {name}")

        out.append(_draw(page, f"optimization history of {name}", build))
    return out


def _pareto(camp: _Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(_NO_COMPLETE)]
    if len(camp.names) > 3:
        return [note(f"A Pareto front plot shows 2 or 3 objectives, not {len(camp.names)}.")]
    from optuna.visualization import plot_pareto_front

    text = f"{len(camp.pareto)} Pareto-optimal trials (listed in the summary)"
    view = camp.view
    if len(camp.ranked) > PARETO_PLOT_TRIALS:
        # Every hover text is a few hundred bytes: draw the front and a sample of the rest.
        optimal = {t.number for t in camp.pareto}
        others = [t for t in camp.ranked if t.number not in optimal]
        some = _spread(others, max(PARETO_PLOT_TRIALS - len(optimal), 0))
        view = camp.view_of(optimal | {t.number for t in some})
        text += f"; {len(some)} of the {len(others)} dominated trials are drawn"
    build = functools.partial(plot_pareto_front, view, target_names=camp.names)
    return [note(text + "."), _draw(page, "Pareto front", build, 550)]


def _spread(trials: Sequence[FrozenTrial], n: int) -> list[FrozenTrial]:
    """``n`` of ``trials``, evenly spaced: with ranked trials the best, the worst and between."""
    if len(trials) <= n:
        return list(trials)
    if n <= 1:
        return list(trials[:n])
    step = (len(trials) - 1) / (n - 1)
    return [trials[round(i * step)] for i in range(n)]


def _parallel(camp: _Campaign, page: Page) -> list[Html]:
    if not camp.ranked:
        return [note(_NO_COMPLETE)]
    if not any(t.params for t in camp.ranked):
        return [note("The trials have no parameters.")]
    from optuna.visualization import plot_parallel_coordinate

    out = []
    view = camp.view
    if len(camp.ranked) > PARALLEL_TRIALS:
        view = camp.view_of({t.number for t in _spread(camp.ranked, PARALLEL_TRIALS)})
        out.append(
            note(
                f"{PARALLEL_TRIALS} of {len(camp.ranked)} complete trials, evenly spaced "
                f"from the best to the worst by {camp.names[0]}."
            )
        )
    if camp.multi:  # Optuna draws every objective as an axis, coloured by Pareto rank
        build = functools.partial(plot_parallel_coordinate, view)
    else:
        build = functools.partial(plot_parallel_coordinate, view, target_name=camp.names[0])
    out.append(_draw(page, "parallel coordinates", build, 500))
    return out


def _importances(camp: _Campaign, page: Page) -> list[Html]:
    if len(camp.ranked) < 2:
        return [note("Parameter importances need at least 2 complete trials.")]
    if not _varied_params(camp.ranked):
        return [note("No parameter varies across the complete trials.")]
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
    from optuna.visualization import plot_param_importances

    evaluator: FanovaImportanceEvaluator | PedAnovaImportanceEvaluator
    if len(camp.ranked) <= FANOVA_TRIALS:
        # Seeded: the same study gives the same figure every time the report is regenerated.
        evaluator = FanovaImportanceEvaluator(seed=0)
        text = "fANOVA: the share of the variance of the objective explained by each parameter"
    else:  # fANOVA takes minutes on thousands of trials; PED-ANOVA a fraction of a second
        evaluator = PedAnovaImportanceEvaluator()
        text = (
            "PED-ANOVA (Optuna's default): how much each parameter matters for reaching "
            "the best 10% of the trials"
        )
    out = [note(f"{text}, from {len(camp.ranked)} complete trials.")]
    if not camp.multi:
        build = functools.partial(plot_param_importances, camp.view, evaluator=evaluator)
        return [*out, _draw(page, "parameter importances", build)]
    for i, (name, direction) in enumerate(zip(camp.names, camp.directions, strict=True)):
        # With a target PED-ANOVA takes low values as good; fANOVA does not mind the sign.
        sign = -1.0 if direction == "maximize" else 1.0

        def build_one(i: int = i, sign: float = sign, name: str = name) -> Any:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator computes")
                fig = plot_param_importances(
                    camp.view,
                    evaluator=evaluator,
                    target=lambda t: sign * t.values[i],
                    target_name=name,
                )
            return fig.update_layout(title=f"Parameter importances for {name}")

        out.append(_draw(page, f"parameter importances for {name}", build_one))
    return out


def _varied_params(trials: Sequence[FrozenTrial]) -> list[str]:
    first: dict[str, Any] = {}
    varied: set[str] = set()
    for trial in trials:
        for name, value in trial.params.items():
            if name not in first:
                first[name] = value
            elif name not in varied and value != first[name]:
                varied.add(name)
    return sorted(varied)


def _curves(camp: _Campaign, page: Page) -> list[Html]:
    if not camp.curves:
        return [note("No trial reported intermediate values.")]
    from optuna.visualization import plot_intermediate_values

    what = f"Intermediate values per step ({camp.names[0]} per epoch for supervisor campaigns)"
    if len(camp.curves) < camp.n_with_curves:
        what += (
            f"; {len(camp.curves)} of {camp.n_with_curves} trials are shown: the best "
            "complete ones and the most recent others"
        )

    def build() -> Any:
        fig = plot_intermediate_values(camp.view)
        return fig.update_layout(title="Learning curves", yaxis_title=camp.names[0])

    return [note(what + "."), _draw(page, "learning curves", build)]


def _timeline(camp: _Campaign, page: Page) -> list[Html]:
    if not any(t.datetime_start is not None for t in camp.trials):
        return [note("No trial has started yet.")]
    from optuna.visualization import plot_timeline

    recent = TIMELINE_TRIALS if len(camp.trials) > TIMELINE_TRIALS else None
    out = []
    if recent is not None:
        out.append(note(f"The {recent} most recent of {len(camp.trials)} trials."))
    height = 500 if len(camp.trials) < 200 else 700
    out.append(
        _draw(page, "timeline", lambda: plot_timeline(camp.view, n_recent_trials=recent), height)
    )
    return out


# -- small helpers -----------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("duration_s")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def _worker(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("worker") or trial.user_attrs.get("hostname") or "")


def _error(trial: FrozenTrial) -> str:
    error = trial.user_attrs.get("error")
    if error:
        return str(error)
    # Where older Optuna versions kept the exception of a plain study's failed trial.
    return str(trial.system_attrs.get("fail_reason", ""))


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _fmt_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _fmt_info(key: str, value: object) -> str:
    # Unix times (as the supervisor stores them) read better as dates.
    if (
        key in ("started", "finished")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 1e9 < value < 1e11
    ):
        return _fmt_time(dt.datetime.fromtimestamp(value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return _fmt(value)


def _dump(config: object) -> str:
    try:
        import yaml

        return str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100))
    except Exception:  # not plain data: JSON with str() for the rest is good enough to read
        return json.dumps(config, indent=2, default=str)


def _atomic_write(path: Path, text: str) -> None:
    """Readers (a browser, the web server of a login node) never see half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 rather than mkstemp (0o600): the umask decides who may read the
    # report, as for any other file the user writes (group-shared project directories).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
