"""``supervisor status`` on a long campaign: the work it does grows with the trials, not
with their square (a 100,000-trial campaign is watched every few seconds, for days)."""

from __future__ import annotations

import builtins
import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import supervisor
from supervisor.commands.status import read_status
from supervisor.study import attrs
from supervisor.study.records import RecordCache, TrialRecord

optuna.logging.set_verbosity(optuna.logging.WARNING)
NOW = 1_800_000_000.0
DRIVER = "login01:4242:live"


T = TypeVar("T")


def trials_copied(monkeypatch: pytest.MonkeyPatch, read: Callable[[], T]) -> tuple[T, int]:
    """What ``read()`` gives, and how many Optuna trials it deep-copied on the way."""
    copied = 0
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        nonlocal copied
        trials = value if isinstance(value, list) else [value]  # its items: not seen here
        copied += sum(isinstance(t, optuna.trial.FrozenTrial) for t in trials)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    result = read()
    monkeypatch.undo()
    return result, copied


def _campaign(n: int) -> optuna.Study:
    """``n`` trials finished one a second by a live driver, one running."""
    study = optuna.create_study(study_name="long", direction="minimize")
    study.set_user_attr(attrs.CONFIG, {"budget": {"trials": n + 100, "epochs": 2}})
    study.set_user_attr(attrs.HEARTBEAT_PREFIX + DRIVER, NOW - 1)
    x = FloatDistribution(0.0, 1.0)
    trials = []
    for i in range(n + 1):
        start = NOW - (n - i) - 30
        running = i == n
        trial = create_trial(
            state=TrialState.RUNNING if running else TrialState.COMPLETE,
            params={"x": i / (n + 1)},
            distributions={"x": x},
            value=None if running else i / n,
            user_attrs={
                attrs.DRIVER: DRIVER,
                attrs.STARTED: start,
                **({} if running else {attrs.FINISHED: start + 30, attrs.DURATION_S: 30.0}),
            },
        )
        trial.datetime_start = dt.datetime.fromtimestamp(start)
        trials.append(trial)
    study.add_trials(trials)
    return study


def test_status_reads_each_trial_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pace of a live session took the minimum of every start once per finish:
    3.5 s of CPU for `status` at 10,000 trials, minutes at 100,000. Counted here as the
    values ``min`` and ``max`` go through, not as a time."""
    n = 2000
    study = _campaign(n)
    seen = 0

    def counting(builtin: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            nonlocal seen
            items = list(args[0]) if len(args) == 1 else list(args)
            seen += len(items)
            return builtin(items, **kwargs)

        return wrapped

    monkeypatch.setattr(builtins, "min", counting(min))
    monkeypatch.setattr(builtins, "max", counting(max))
    status = read_status(study, now=NOW)
    monkeypatch.undo()
    assert status.done == n and len(status.active) == 1
    assert status.eta == pytest.approx(100 / status.per_hour * 3600)
    assert seen < 20 * n, f"{seen} values for {n} trials"


def test_a_watch_reads_again_only_the_trials_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`status --watch` read every trial of the campaign again at each look (a second of
    CPU per look at 38,000 trials); finished trials do not change."""
    study = _campaign(300)
    read: list[int] = []
    real = TrialRecord.from_frozen

    def counted(trial: optuna.trial.FrozenTrial) -> TrialRecord:
        read.append(trial.number)
        return real(trial)

    monkeypatch.setattr(TrialRecord, "from_frozen", counted)
    cache = RecordCache()
    first = read_status(study, now=NOW, cache=cache)
    assert len(read) == 301
    read.clear()
    running = study.get_trials(deepcopy=False)[-1]
    study.tell(running.number, -1.0)  # the running trial finishes: the new best
    again = read_status(study, now=NOW + 5, cache=cache)
    assert read == [300]
    assert again.best_number == 300 and again.done == first.done + 1
    read.clear()
    assert read_status(study, now=NOW + 10, cache=cache).done == again.done and read == []


def test_status_of_a_multi_objective_campaign_copies_no_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The size of the Pareto front came from ``study.best_trials``, which deep-copies
    every trial of the study (histories, tracebacks): 2 s of `status` at 10,000 trials,
    20 s at 100,000, and the memory of the campaign twice."""
    study = optuna.create_study(study_name="two", directions=["minimize", "minimize"])
    x = FloatDistribution(0.0, 1.0)
    history = [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(20)]
    study.add_trials(
        [
            create_trial(
                params={"x": i / 200},
                distributions={"x": x},
                values=[i / 200, 1 - i / 200 + (i % 2)],  # the even ones: the front
                user_attrs={attrs.HISTORY: history},
            )
            for i in range(200)
        ]
    )
    status, copied = trials_copied(monkeypatch, lambda: read_status(study, now=NOW))
    assert status.pareto_size == len(study.best_trials) == 100
    assert copied == 0


def test_the_pareto_front_of_a_run_copies_no_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Run.best_trials`` from a notebook: the front of a 100,000-trial campaign came
    from ``study.best_trials``, a deep copy of every trial first."""
    from supervisor.perf.report_scale import make_campaign

    run_dir = tmp_path / "runs" / "scale"
    make_campaign(run_dir, 200, n_objectives=2)
    run = supervisor.open_run(str(run_dir))
    expected = sorted(t.number for t in run.study.best_trials)
    front, copied = trials_copied(monkeypatch, lambda: run.best_trials)
    assert sorted(t.number for t in front) == expected and len(expected) > 1
    assert copied == 0


def test_opening_a_long_campaign_and_reading_its_trials_runs_no_garbage_collection(
    tmp_path: Path,
) -> None:
    """Opening a journal (its snapshot unpickled, or its records replayed) and reading a
    record per trial make millions of objects at 38,000 trials, none of them garbage; the
    collector's passes over them were half of `supervisor status`'s 5 s of CPU."""
    import gc

    from supervisor.study.storage import load_study, open_storage

    journal = tmp_path / "journal.log"
    source = _campaign(800)
    study = optuna.create_study(study_name="long", storage=open_storage(f"journal:{journal}"))
    study.add_trials(source.get_trials(deepcopy=False))
    passes: list[int] = []

    def counting(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(counting)
    try:
        opened = load_study(f"journal:{journal}", "long")
        records = RecordCache().records(opened.get_trials(deepcopy=False))
    finally:
        gc.callbacks.remove(counting)
        if not was_enabled:
            gc.disable()
    assert len(records) == 801 and records[0].driver == DRIVER
    assert passes == [], f"{len(passes)} collections while opening and reading"
    assert gc.isenabled()
