"""Pruning across the cluster, duplicates, and the cost metrics every trial measures."""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pytest
from distributed import Client, LocalCluster
from optuna.trial import TrialState

from supervisor.benchmarks import Direction, EpochReport
from supervisor.clusters.handle import configure_dask
from supervisor.config import space
from supervisor.errors import SpaceError
from supervisor.execution import channel
from supervisor.execution.trial_host import TrialHost
from supervisor.execution.worker import run_trial
from supervisor.study import attrs
from supervisor.study.driver import Driver
from tests.execution.test_worker import spec
from tests.study.test_driver import TOY, Lines, experiment, make_study
from tests.toy_benchmark import ToyBenchmark

PARETO_TOY = "tests.study.test_pruning:ToyWithData"


class ToyWithData(ToyBenchmark):
    """The toy with validation inputs (so latency is measured) and a second metric,
    ``size`` = the ``units`` parameter, that trades off against the loss."""

    metrics: ClassVar[dict[str, Direction]] = {
        "loss": "minimize",
        "score": "maximize",
        "size": "minimize",
    }

    def load_data(self, seed: int) -> Any:
        return types.SimpleNamespace(x_val=np.zeros((100, 4)))

    def fit(
        self, model: Any, data: Any, params: Mapping[str, Any], epochs: int, report: EpochReport
    ) -> dict[str, float]:
        units = float(params.get("units", 1))

        def with_size(epoch: int, metrics: dict[str, float]) -> bool:
            return report(epoch, {**metrics, "loss": metrics["loss"] + 1 / units})

        metrics = super().fit(model, data, params, epochs, with_size)
        return {**metrics, "loss": metrics["loss"] + 1 / units, "size": units}

    def predict(self, model: Any, x: Any) -> Any:
        import time

        time.sleep(0.001)  # 1 ms per call of 32 samples: about 0.03 ms per sample
        return x


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Worker processes, as `supervisor search` starts them: events and verdicts cross
    process boundaries."""
    configure_dask()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


# -- pruning --------------------------------------------------------------------------


def test_pruned_trials_stop_early_on_a_dask_cluster(tmp_path: Path, client: Client) -> None:
    # loss at epoch e is (x - 2)^2 + 1/(e + 1): over 4 at epoch 0 exactly when |x - 2| > 1.73.
    exp = experiment(
        tmp_path,
        "  x: {type: float, low: -4, high: 4}",
        "{trials: 8, epochs: 8}\npruner: {name: threshold, options: {upper: 4.0}}",
        options="{delay: 0.05}",
    )
    study = make_study(exp)
    summary = Driver(exp, study, client, slots=2).run()
    assert summary.finished == 8
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert pruned and complete, "seed 3 draws x on both sides of the threshold"
    assert summary.states["pruned"] == len(pruned)
    for t in pruned:
        assert abs(t.params["x"] - 2) > 3**0.5
        # Judged after epoch 0 and stopped right there: one epoch run, not eight.
        assert sorted(t.intermediate_values) == [0] and len(t.user_attrs["history"]) == 1
        assert t.user_attrs["pruned_at_epoch"] == 0
        assert t.value == t.intermediate_values[0]  # Optuna's value of a pruned trial
    for t in complete:
        assert abs(t.params["x"] - 2) <= 3**0.5
        assert sorted(t.intermediate_values) == list(range(8))
        assert t.user_attrs["worker"].startswith("tcp://")


def test_without_a_pruner_nothing_waits_and_nothing_is_pruned(
    tmp_path: Path, client: Client
) -> None:
    exp = experiment(tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 4, epochs: 3}")
    assert not exp.prunes
    study = make_study(exp)  # Optuna's default MedianPruner must not be consulted
    Driver(exp, study, client, slots=2).run()
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert all(sorted(t.intermediate_values) == [0, 1, 2] for t in study.trials)


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_a_verdict_stops_the_trial_at_the_epoch_boundary(
    isolation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_trial as a worker runs it, with a fake driver that answers each epoch a little
    later: continue, then prune after epoch 1."""
    heard: list[dict[str, Any]] = []

    def driver(trial_spec: Any, msg: dict[str, Any], worker: Any = None) -> None:
        heard.append(msg)
        if msg["kind"] == "epoch" and trial_spec.trial_number == 3:
            verdict = ("s", 3, msg["epoch"], msg["epoch"] == 1)
            threading.Timer(0.05, channel.deliver_verdicts, ([verdict],)).start()

    monkeypatch.setattr(channel, "publish", driver)
    result = run_trial(spec(3, epochs=20, verdict_timeout=5.0, isolation=isolation))
    assert result.status == "pruned" and result.values is None
    assert [h["epoch"] for h in result.history] == [0.0, 1.0]
    assert "latency_ms" not in result.metrics, "a pruned trial frees its slot at once"
    assert [m["kind"] for m in heard] == ["started", "epoch", "epoch"]
    assert heard[1]["metrics"]["loss"] == result.history[0]["loss"]
    # Epochs nobody judges wait at most the timeout, then go on.
    quick = run_trial(spec(4, epochs=3, verdict_timeout=0.05, isolation=isolation))
    assert quick.status == "complete" and len(quick.history) == 3


def test_unjudged_trials_stream_only_once_they_run_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a pruner, a sub-second trial sends its driver nothing (its result carries
    the same); a longer one announces itself after STREAM_AFTER even in its first epoch,
    then streams its epochs."""
    heard: list[tuple[int, str]] = []
    monkeypatch.setattr(channel, "current_worker", lambda: "a worker")
    monkeypatch.setattr(
        channel, "publish", lambda s, msg, worker=None: heard.append((s.trial_number, msg["kind"]))
    )
    monkeypatch.setattr(channel, "STREAM_AFTER", 30.0)  # any loaded machine runs it faster
    quick = run_trial(spec(1, epochs=3, events_topic="t"))
    assert quick.status == "complete" and len(quick.history) == 3 and heard == []
    monkeypatch.setattr(channel, "STREAM_AFTER", 0.3)  # each epoch takes 0.4 s
    slow = run_trial(spec(2, epochs=2, events_topic="t", options={"delay": 0.4, "offset": 2.0}))
    assert slow.status == "complete"
    assert heard[0] == (2, "started") and heard[1:] == [(2, "epoch"), (2, "epoch")]


def test_a_running_trial_shows_its_worker_while_it_runs(tmp_path: Path, client: Client) -> None:
    from supervisor.commands.status import read_status

    exp = experiment(
        tmp_path, "  x: {type: float, low: -4, high: 4}", "{trials: 2, epochs: 4}", "{delay: 0.5}"
    )
    study = make_study(exp)
    driver = threading.Thread(target=Driver(exp, study, client, slots=2).run)
    driver.start()
    seen: list[Any] = []
    for _ in range(100):  # the first epoch takes 0.5 s: these are seen long before the end
        seen = [r for r in read_status(study).running if r.worker]
        if seen:
            break
        threading.Event().wait(0.05)
    driver.join()
    assert seen and seen[0].worker.startswith("tcp://")
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}


# -- the pruner section ---------------------------------------------------------------

GOOD_PRUNERS = [
    "none",
    "median",
    "{name: median, options: {n_startup_trials: 2, n_warmup_steps: 1}}",
    "{name: percentile, options: {percentile: 25.0}}",
    "asha",
    "{name: successive_halving, options: {min_resource: 1, reduction_factor: 3}}",
    "{name: hyperband, options: {min_resource: 1, max_resource: 9}}",
    "{name: threshold, options: {upper: 1.0}}",
    "{name: patient, options: {patience: 2, wrapped_pruner: median}}",
    "wilcoxon",
]


@pytest.mark.parametrize("pruner", GOOD_PRUNERS)
def test_every_pruner_name_builds(tmp_path: Path, pruner: str) -> None:
    exp = experiment(
        tmp_path, "  x: {type: float, low: 0, high: 1}", f"{{trials: 1}}\npruner: {pruner}"
    )
    assert exp.to_dict()["pruner"]["name"] == exp.pruner


BAD_PRUNERS = [
    ("mediam", "pruner.name", "unknown pruner 'mediam' (did you mean \"median\""),
    (
        "{name: median, options: {n_warmup_step: 2}}",
        "pruner.options.n_warmup_step",
        'did you mean "n_warmup_steps"',
    ),
    (
        "{name: percentile, options: {percentile: 150.0}}",
        "pruner.options.percentile",
        "PercentilePruner",
    ),
    ("percentile", "pruner.name", "percentile"),
    (
        "{name: patient, options: {patience: 2, wrapped_pruner: mediun}}",
        "pruner.options.wrapped_pruner",
        "unknown pruner",
    ),
    ("{name: none, options: {x: 1}}", "pruner.options.x", "NopPruner has no option"),
    ("{name: median, options: 3}", "pruner.options", "expected a mapping"),
]


@pytest.mark.parametrize(("pruner", "key", "words"), BAD_PRUNERS)
def test_bad_pruners_are_one_located_line(
    tmp_path: Path, pruner: str, key: str, words: str
) -> None:
    with pytest.raises(SpaceError) as info:
        experiment(
            tmp_path, "  x: {type: float, low: 0, high: 1}", f"{{trials: 1}}\npruner: {pruner}"
        )
    message = str(info.value)
    assert "\n" not in message and "toy.yaml" in message and key in message and words in message


def test_pruning_needs_one_objective(tmp_path: Path) -> None:
    path = tmp_path / "mo.yaml"
    path.write_text(
        f'benchmark: "{TOY}"\nobjectives: [loss, train_seconds]\n'
        "params: {x: {type: float, low: 0, high: 1}}\nbudget: {trials: 1}\npruner: median\n"
    )
    with pytest.raises(SpaceError, match=r"pruner\.name.*single objective"):
        space.load(path)


# -- duplicates -----------------------------------------------------------------------


def test_duplicates_are_not_trained_twice(tmp_path: Path, client: Client) -> None:
    exp = experiment(
        tmp_path, "  x: [1.0, 2.0, 3.0]", "{trials: 9, epochs: 2}", options="{delay: 0.05}"
    )
    study = make_study(exp)
    summary = Driver(exp, study, client, slots=2).run()
    assert summary.finished == 9 and {t.state for t in study.trials} == {TrialState.COMPLETE}
    trained = [t for t in study.trials if attrs.DUPLICATE_OF not in t.user_attrs]
    assert len({t.params["x"] for t in trained}) == len(trained) <= 3
    by_number = {t.number: t for t in study.trials}
    dups = [t for t in study.trials if attrs.DUPLICATE_OF in t.user_attrs]
    known = [t for t in dups if t.user_attrs[attrs.DUPLICATE_KNOWN]]
    blind = [t for t in dups if not t.user_attrs[attrs.DUPLICATE_KNOWN]]
    assert known and summary.states["duplicate"] == len(known)
    assert summary.states.get("duplicate (not counted)", 0) == len(blind)
    for t in dups:
        earlier = by_number[t.user_attrs[attrs.DUPLICATE_OF]]
        assert earlier.params == t.params and earlier.values == t.values
        assert "worker" not in t.user_attrs, "never handed to a worker"
        # Proposed with its twin's result in the study, or while the twin still trained.
        assert earlier.datetime_complete is not None and t.datetime_start is not None
        assert (earlier.datetime_complete <= t.datetime_start) == (t in known)
    # The budget counts what was trained and the deliberate repeats, not the blind ones.
    assert len(trained) + len(known) == 9
    assert sum(attrs.counts_toward_budget(t) for t in study.trials) == 9


def test_twins_of_a_failed_trial_train_after_all(tmp_path: Path, client: Client) -> None:
    exp = experiment(tmp_path, "  mode: [raise]", "{trials: 3, epochs: 1}")
    study = make_study(exp)
    Driver(exp, study, client, slots=2).run()
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    # Only a completed configuration is skipped: each of these trained (and failed) itself.
    assert all("exploded" in t.user_attrs["error"] for t in study.trials)
    assert not any(attrs.DUPLICATE_OF in t.user_attrs for t in study.trials)
    first, *twins = study.trials
    assert all(t.user_attrs["started"] >= first.user_attrs["finished"] for t in twins), (
        "they waited for their twin instead of running beside it"
    )


def test_retrain_duplicates_trains_every_trial(tmp_path: Path, client: Client) -> None:
    exp = experiment(
        tmp_path, "  x: [1.0, 2.0]", "{trials: 5, epochs: 1}\nretrain_duplicates: true"
    )
    study = make_study(exp)
    Driver(exp, study, client, slots=2).run()
    assert len(study.trials) == 5
    assert all(
        "worker" in t.user_attrs and attrs.DUPLICATE_OF not in t.user_attrs for t in study.trials
    )


# -- cost metrics ---------------------------------------------------------------------


def test_cost_metrics_are_measured_for_every_trial() -> None:
    host = TrialHost()
    try:
        toy = {"benchmark_target": PARETO_TOY, "isolation": "process", "threads": 2}
        small = host.run(spec(0, **toy, params={"x": 1.0, "units": 4}))
        hog = host.run(spec(1, **toy, params={"x": 1.0, "mode": "hog", "mb": 200, "seconds": 0}))
        after = host.run(spec(2, **toy, params={"x": 1.0}))
    finally:
        host.stop()
    for r in (small, hog, after):
        assert r.status == "complete", r.error
        m = r.metrics
        assert m["node_seconds"] == pytest.approx(2 * m["train_seconds"])
        assert 0.0 < m["latency_ms"] < 5.0, "1 ms per 32-sample call, plus overhead"
        assert m["peak_memory_mb"] >= r.extra["rss_mb"] * 0.5 > 0
    assert small.metrics["n_params"] == 2.0 and small.metrics["size"] == 4.0
    # The peak is per trial: the 200 MiB of the hog show in its peak, not in the next one's.
    assert hog.metrics["peak_memory_mb"] > small.metrics["peak_memory_mb"] + 150
    assert after.metrics["peak_memory_mb"] < hog.metrics["peak_memory_mb"] - 150


def test_a_cost_objective_the_benchmark_cannot_measure_fails_clearly() -> None:
    result = run_trial(spec(0, objectives=("latency_ms",)))  # the toy's data has no x_val
    assert result.status == "failed" and result.failure == "model"
    assert "latency_ms" in (result.error or "") and "latency not measured" in (result.error or "")


def test_cost_metrics_are_objectives_of_the_space_file(tmp_path: Path) -> None:
    path = tmp_path / "cost.yaml"
    names = "[loss, train_seconds, node_seconds, n_params, latency_ms, peak_memory_mb]"
    path.write_text(
        f'benchmark: "{TOY}"\nobjectives: {names}\n'
        "params: {x: {type: float, low: 0, high: 1}}\nbudget: {trials: 1}\nsampler: nsgaii\n"
    )
    exp = space.load(path)
    assert exp.directions == ["minimize"] * 6
    assert optuna.create_study(directions=exp.directions)


@pytest.mark.parametrize(
    ("pruner", "epochs", "note"),
    [
        ("median", 1, "median pruner may stop a trial after epoch 1 at the earliest"),
        ("asha", 2, "asha pruner may stop a trial after epoch 2 at the earliest (min_resource"),
        ("{name: threshold, options: {upper: 1.0, n_warmup_steps: 5}}", 4, "after epoch 6"),
        ("{name: patient, options: {patience: 2, wrapped_pruner: median}}", 3, "(patience: 2)"),
        ("asha", 3, None),
        ("hyperband", 3, None),
        ("median", 2, None),
    ],
)
def test_a_pruner_that_can_stop_no_trial_before_its_last_epoch_is_pointed_out(
    tmp_path: Path, threads_client: Client, pruner: str, epochs: int, note: str | None
) -> None:
    """ASHA with 2 epochs (its first rung is the second epoch), a median pruner's warm-up
    as long as the training: every trial trained to its end, and the campaign ran with a
    pruner that pruned nothing early without a word."""
    exp = experiment(
        tmp_path,
        "  x: {type: float, low: -4, high: 4}",
        f"{{trials: 2, epochs: {epochs}}}\npruner: {pruner}",
    )
    shown = Lines()
    Driver(exp, make_study(exp), threads_client, slots=1, display=shown).run()
    notes = [line for line in shown.lines if "pruner may stop" in line]
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and note in notes[0], notes
        assert notes[0].endswith(
            f"and trials train {epochs} epoch(s): it stops none early; lower that option,"
            " raise budget.epochs, or leave the pruner out"
        )
