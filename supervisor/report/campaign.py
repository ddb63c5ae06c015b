"""The study as the report reads it: every trial once, ranked, and a light copy to plot.

The Optuna figures are drawn from an in-memory copy of the study ("view") holding every
trial with only a few small user attributes: Optuna puts all user attributes of a trial
into its hover text (history, slice, Pareto front), and a supervisor trial carries its
whole per-epoch history and traceback there, which would make the page grow by megabytes
per thousand trials. The copy also means the study's storage (a database or journal,
maybe remote) is read once, not once per figure.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.report.fmt import clip
from supervisor.study import attrs
from supervisor.study.records import TrialRecord

if TYPE_CHECKING:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial

HOVER_ERROR_CHARS = 160


@dataclass
class Campaign:
    study_name: str
    user_attrs: dict[str, Any]
    directions: list[str]  # "minimize" | "maximize", one per objective
    names: list[str]  # objective names
    trials: list[FrozenTrial]
    # Complete, finite values; best first by the first objective. The best: ``feasible``.
    ranked: list[FrozenTrial]
    failed: list[FrozenTrial]
    view: optuna.Study
    run_dir: Path | None = None  # where per-trial artifacts live
    now: float = field(default_factory=time.time)  # "now" for running trials
    param_order: list[str] = field(default_factory=list)  # most important first, once known
    records: dict[int, TrialRecord] = field(default_factory=dict)  # by number; see record()

    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    @property
    def config(self) -> dict[str, Any]:
        config = self.user_attrs.get(attrs.CONFIG)
        return config if isinstance(config, dict) else {}

    @property
    def objectives_text(self) -> str:
        return ", ".join(f"{m} ({d})" for m, d in zip(self.names, self.directions, strict=True))

    def view_of(self, numbers: Container[int]) -> optuna.Study:
        """A view in which only the trials ``numbers`` are there to plot."""
        light = self.view.get_trials(deepcopy=False)
        kept = [t for t in light if t.number in numbers]
        return make_view(self.study_name, self.view.directions, kept, self.names)

    def record(self, trial: FrozenTrial) -> TrialRecord:
        """What the supervisor stored with one of the campaign's trials, read once."""
        found = self.records.get(trial.number)
        if found is None:
            found = self.records[trial.number] = TrialRecord.from_frozen(trial)
        return found

    @functools.cached_property
    def orphans(self) -> set[int]:
        """RUNNING trials whose driver is gone (see supervisor.study.recovery.orphaned)."""
        from supervisor.study.recovery import orphaned

        return orphaned(self.user_attrs, self.trials, self.now)

    @functools.cached_property
    def feasible(self) -> list[FrozenTrial]:
        """The ranked trials that keep the space file's constraints (all of them in a study
        without): the candidates for "best" (``supervisor.study.feasibility``)."""
        from supervisor.study.feasibility import feasible

        return [t for t in self.ranked if feasible(t)]

    @property
    def constrained(self) -> bool:
        """Whether its trials were judged by constraints (stored with the experiment, or
        set on its trials by an Optuna script)."""
        return bool(self.config.get("constraints")) or len(self.feasible) < len(self.ranked)

    @functools.cached_property
    def outliers(self) -> dict[int, str]:
        """Ranked trials with an objective value far beyond the others' (a diverged
        training's 1e37): "score 1e+37" by trial number. The figures leave them out, else
        they squeeze every other trial into a line (``supervisor.report.ranges``)."""
        from supervisor.report.ranges import fence, short

        found: dict[int, str] = {}
        for i, name in enumerate(self.names):
            bounds = fence(t.values[i] for t in self.ranked)
            if bounds is None:
                continue
            for t in self.ranked:
                if not bounds[0] <= t.values[i] <= bounds[1] and t.number not in found:
                    found[t.number] = f"{name} {short(t.values[i])}"
        return found

    @functools.cached_property
    def pareto(self) -> list[FrozenTrial]:
        """study.best_trials among the ranked trials (finite values), as the original
        trials, in the order of the first objective. An infinite value would dominate
        every finite one: a front of it alone, an infinite hypervolume, while the figures
        leave it out. Optuna's front is of the trials that keep the constraints."""
        order = {t.number: i for i, t in enumerate(self.ranked)}
        view = self.view if len(order) == len(self.trials) else self.view_of(order)
        numbers = sorted((t.number for t in view.best_trials), key=lambda n: order.get(n, n))
        by_number = {t.number: t for t in self.trials}
        return [by_number[n] for n in numbers if n in by_number]

    @classmethod
    def load(cls, study: optuna.Study, run_dir: Path | None = None) -> Campaign:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        records = {t.number: TrialRecord.from_frozen(t) for t in trials}
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
        common = covering_distributions(trials)
        lights = [light(t, records[t.number], common) for t in trials]
        return cls(
            study_name=study.study_name,
            user_attrs=user_attrs,
            directions=directions,
            names=names,
            trials=trials,
            ranked=ranked,
            # This campaign's failures: an earlier run's, told by warm start, are not.
            failed=[
                t
                for t in trials
                if t.state == TrialState.FAIL and attrs.WARM_START not in t.user_attrs
            ],
            view=make_view(study.study_name, study.directions, lights, names),
            run_dir=run_dir,
            records=records,
        )


def _objective_names(user_attrs: Mapping[str, Any], study: optuna.Study, n: int) -> list[str]:
    for names in (user_attrs.get(attrs.OBJECTIVES), study.metric_names):
        if isinstance(names, (list, tuple)) and len(names) == n:
            return [str(name) for name in names]
    return [f"objective {i}" for i in range(n)]


def spread(trials: Sequence[FrozenTrial], n: int) -> list[FrozenTrial]:
    """``n`` of ``trials``, evenly spaced: with ranked trials the best, the worst and between."""
    if len(trials) <= n:
        return list(trials)
    if n <= 1:
        return list(trials[:n])
    step = (len(trials) - 1) / (n - 1)
    return [trials[round(i * step)] for i in range(n)]


def make_view(
    study_name: str,
    directions: Sequence[StudyDirection],
    trials: list[FrozenTrial],
    names: list[str],
) -> optuna.Study:
    """A read-only study of the given light trials (see ``light``), for Optuna's plots.

    The trials keep their own numbers, so a view of some trials labels them as the study
    does.
    """
    import optuna

    storage = _view_storage_class()(study_name, list(directions), trials)
    view = optuna.load_study(
        study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(0)
    )
    view.set_metric_names(names)
    return view


@functools.cache
def _view_storage_class() -> type[Any]:
    from optuna.storages import BaseStorage

    from supervisor.optuna_internals import FrozenStudy
    from supervisor.optuna_internals import trial_id as id_of

    class ViewStorage(BaseStorage):
        """One study with given trials, served as they are (never copied, never changed).

        Optuna's InMemoryStorage deep-copies every trial on the way in: seconds per view at
        10,000 trials, and the report makes a view per sampled figure.
        """

        def __init__(self, name: str, directions: list[StudyDirection], trials: list[Any]):
            self._name = name
            self._directions = directions
            self._trials = trials
            self._by_id = {id_of(t): t for t in trials}
            self._system_attrs: dict[str, Any] = {}

        def get_all_trials(
            self, study_id: int, deepcopy: bool = True, states: Container[Any] | None = None
        ) -> list[FrozenTrial]:
            if states is None:
                return list(self._trials)
            return [t for t in self._trials if t.state in states]

        def get_trial(self, trial_id: int) -> FrozenTrial:
            return self._by_id[trial_id]

        def get_study_id_from_name(self, study_name: str) -> int:
            if study_name != self._name:
                raise KeyError(study_name)
            return 0

        def get_study_name_from_id(self, study_id: int) -> str:
            return self._name

        def get_study_directions(self, study_id: int) -> list[StudyDirection]:
            return self._directions

        def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
            return {}

        def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
            return self._system_attrs

        def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
            self._system_attrs[key] = value  # metric names, set once by the view

        def get_all_studies(self) -> list[FrozenStudy]:
            attrs = dict(self._system_attrs)
            return [FrozenStudy(self._name, None, {}, attrs, 0, directions=self._directions)]

        def _read_only(self, *args: Any, **kwargs: Any) -> Any:
            # Figures only read; a write would change what the report shows of the study.
            raise RuntimeError("a report view is read-only")

        create_new_study = delete_study = set_study_user_attr = _read_only
        create_new_trial = set_trial_param = set_trial_state_values = _read_only
        set_trial_intermediate_value = set_trial_user_attr = set_trial_system_attr = _read_only

    return ViewStorage


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


def covering_distributions(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """For each parameter whose range changed between the trials (a resume that widened
    it), one range covering them all. Optuna's importances (and the plots that take their
    order) keep only parameters whose distribution every trial shares: such a parameter
    vanished, however much it mattered, and the others shared all of the importance."""
    from optuna.distributions import FloatDistribution, IntDistribution

    found: dict[str, dict[Any, None]] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            found.setdefault(name, {})[dist] = None
    common: dict[str, Any] = {}
    for name, seen in found.items():
        dists = list(seen)
        kinds = {(type(d), getattr(d, "log", None)) for d in dists}
        if len(dists) < 2 or len(kinds) != 1:
            continue
        low, high = min(d.low for d in dists), max(d.high for d in dists)
        if isinstance(dists[0], FloatDistribution):
            common[name] = FloatDistribution(low, high, log=dists[0].log)
        elif isinstance(dists[0], IntDistribution):
            common[name] = IntDistribution(int(low), int(high), log=dists[0].log)
    return common


def light(
    trial: FrozenTrial, record: TrialRecord | None = None, common: Mapping[str, Any] | None = None
) -> FrozenTrial:
    """A copy of the trial with only the user attributes the figures show (and ``common``
    distributions in place of its own, see ``covering_distributions``)."""
    from supervisor.optuna_internals import CONSTRAINTS_KEY, trial_id

    if record is None:
        record = TrialRecord.from_frozen(trial)
    shown = (
        (attrs.WORKER, record.worker),
        (attrs.DURATION_S, record.duration),
        (attrs.FAILURE, record.failure),
        (attrs.ERROR_TYPE, record.error_type),
    )
    small: dict[str, Any] = {k: v for k, v in shown if v is not None}
    if record.error:
        small[attrs.ERROR] = clip(record.error, HOVER_ERROR_CHARS)
    # Constraints decide feasibility colours in the plots: Optuna keeps them as a list
    # under "constraints" or one value per "constraints:<name>".
    system = {
        k: v
        for k, v in trial.system_attrs.items()
        if k == CONSTRAINTS_KEY or k.startswith(CONSTRAINTS_KEY + ":")
    }
    return _view_trial_class()(
        number=trial.number,
        state=trial.state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=dict(trial.params),
        distributions={k: (common or {}).get(k, d) for k, d in trial.distributions.items()},
        user_attrs=small,
        system_attrs=system,
        # Learning curves are drawn from the history attribute (curves.py), not by Optuna.
        intermediate_values={},
        trial_id=trial_id(trial),
    )
