"""Multi-rank trials: data-parallel training over mpi4py (supervisor.execution.ranks).

A tiny Keras regression trains on 1 and 2 ranks at the same global batch: the loss
trajectories and final weights agree. A real benchmark trial completes on 2 ranks; a
rank that raises fails the trial at once with its error.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import supervisor.rundir as rundir
from benchmarks_sci.keras_fit import fit_reporting
from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option, checkpoint_of
from supervisor.execution.ranks.allreduce import RanksUnsupported, ShardPlan
from supervisor.execution.ranks.launch import find_mpiexec, run_ranked_trial
from supervisor.execution.trial import TrialSpec
from tests.toy_benchmark import ToyBenchmark

pytestmark = pytest.mark.mpi
needs_mpiexec = pytest.mark.skipif(
    find_mpiexec() is None, reason="no mpiexec (it comes with the mpich wheel, a dependency)"
)


class TinyRegression(Benchmark):
    """Two dense layers fitting a noisy linear map: deterministic (no dropout), shuffled
    by the ranks' shared permutation. ``fail_rank``/``fail_epoch`` make one rank raise."""

    name = "tiny_regression"
    metrics: ClassVar[dict[str, Direction]] = {"val_loss": "minimize"}
    options: ClassVar[dict[str, Option]] = {
        "n_train": Option(96, "training samples", low=2),
        "die_epoch": Option(-1, "epoch whose report makes rank 0 raise (a killed trial)"),
    }

    def load_data(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(self.config["n_train"] + 32, 6)).astype(np.float32)
        y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(len(x), 1))).astype(np.float32)
        n = self.config["n_train"]
        return {"x_train": x[:n], "y_train": y[:n], "x_val": x[n:], "y_val": y[n:]}

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        import keras

        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
        return model

    def fit(
        self, model: Any, data: Any, params: Mapping[str, Any], epochs: int, report: EpochReport
    ) -> dict[str, float]:
        def maybe_fail(epoch: int, metrics: dict[str, float]) -> bool:
            rank = int(os.environ.get("PMI_RANK", "0"))
            if rank == params.get("fail_rank") and epoch == params.get("fail_epoch", 0):
                raise RuntimeError(f"rank {rank} failed on purpose at epoch {epoch}")
            if rank == 0 and epoch == self.config["die_epoch"]:
                raise RuntimeError(f"died at epoch {epoch}")
            return report(epoch, metrics)

        outcome = fit_reporting(
            model,
            data["x_train"],
            data["y_train"],
            batch_size=int(params.get("batch_size", 16)),
            epochs=epochs,
            report=maybe_fail,
            validate=lambda m, _: {"loss": self._val_loss(m, data)},
            val_reported=("loss",),
            checkpoint=checkpoint_of(report),
        )
        return {"val_loss": outcome.val["loss"]}

    def _val_loss(self, model: Any, data: Any) -> float:
        pred = self.predict(model, data["x_val"])
        return float(np.mean((pred - data["y_val"]) ** 2))

    def predict(self, model: Any, x: Any) -> np.ndarray:
        return np.asarray(model.predict(x, verbose=0))

    def save_data(self, data: Any, path: Path) -> None:
        np.savez(path, **data)

    def artifacts(self, model: Any, data: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        return {f"w{i}": w for i, w in enumerate(model.get_weights())}


class NoRanksToy(ToyBenchmark):
    supports_ranks = False


def spec_for(target: str, **changes: Any) -> TrialSpec:
    base = TrialSpec(
        study_name="ranks",
        trial_number=3,
        params={},
        benchmark="tiny",
        benchmark_target=target,
        options={},
        epochs=4,
        seed=11,
        data_seed=5,
        objectives=("val_loss",),
        time_limit=120.0,
    )
    return replace(base, **changes)


def weights(run_dir: Path, number: int) -> list[np.ndarray]:
    with np.load(rundir.trial_dir(run_dir, number) / rundir.ARTIFACTS_FILE) as f:
        return [f[f"w{i}"] for i in range(len(f.files))]


def test_every_rank_gets_an_equal_slice_of_every_shuffled_global_batch() -> None:
    plans = [
        ShardPlan(n=50, global_batch=16, rank=r, size=3, seed=1, shuffle=True) for r in range(3)
    ]
    # 3 full batches of 16 -> 15 (16 % 3 left out); the last 2 samples are fewer than 3 ranks.
    assert plans[0].num_batches == 3
    for epoch in (0, 1):
        perm = plans[0].permutation(epoch)
        assert sorted(perm) == list(range(50))
        for i in range(3):
            parts = [p.indices(perm, i) for p in plans]
            assert [len(p) for p in parts] == [5, 5, 5]
            assert np.array_equal(np.concatenate(parts), perm[i * 16 : i * 16 + 15])
    assert not np.array_equal(plans[0].permutation(0), plans[0].permutation(1))
    unshuffled = ShardPlan(n=8, global_batch=4, rank=1, size=2, seed=1, shuffle=False)
    assert unshuffled.indices(unshuffled.permutation(0), 1).tolist() == [6, 7]
    with pytest.raises(RanksUnsupported, match="smaller than the 4 ranks"):
        ShardPlan(n=50, global_batch=2, rank=0, size=4, seed=1, shuffle=True)


@needs_mpiexec
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_ranks_follow_the_one_rank_loss_trajectory(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "tensorflow":
        pytest.importorskip(backend)
    monkeypatch.setenv("KERAS_BACKEND", backend)  # the ranks inherit it
    target = f"{__name__}:TinyRegression"
    heard: list[tuple[int, float]] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        heard.append((epoch, metrics["loss"]))
        return False

    runs = {}
    for ranks in (1, 2):
        spec = spec_for(target, trial_number=ranks, run_dir=str(tmp_path))
        t0 = time.perf_counter()
        runs[ranks] = run_ranked_trial(spec, ranks, on_epoch if ranks == 2 else None)
        print(f"{ranks} rank(s): {time.perf_counter() - t0:.1f} s")
        assert runs[ranks].status == "complete", runs[ranks].error
        assert runs[ranks].extra["ranks"] == ranks
        assert runs[ranks].extra["keras_backend"] == backend
    one, two = (np.array([[h["loss"], h["val_loss"]] for h in runs[k].history]) for k in (1, 2))
    assert one.shape == two.shape == (4, 2)
    assert one[-1, 0] < 0.5 * one[0, 0]  # it learns: the comparison is not of constants
    print("max relative difference of loss, val_loss per epoch:", np.max(np.abs(two / one - 1)))
    np.testing.assert_allclose(two, one, rtol=1e-4)
    for w1, w2 in zip(weights(tmp_path, 1), weights(tmp_path, 2), strict=True):
        print("max absolute difference of final weights:", np.max(np.abs(w2 - w1)))
        np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-6)
    # Rank 0 streamed its epochs with the averaged (global) training loss.
    assert heard == [(e, pytest.approx(two[e, 0])) for e in range(4)]


@needs_mpiexec
def test_a_two_rank_trial_keeps_a_model_that_loads_into_a_one_rank_build(tmp_path: Path) -> None:
    """keep_models: rank 0 alone saves the trained weights; ``Run.model`` builds the
    model without ranks and loads them, and it scores what the trial scored."""
    from supervisor.execution.trial import KeepModel

    spec = spec_for(f"{__name__}:TinyRegression", run_dir=str(tmp_path), keep_model=KeepModel())
    result = run_ranked_trial(spec, 2)
    assert result.status == "complete", result.error
    bench = TinyRegression({"n_train": 96, "die_epoch": -1})
    model = bench.build_model({}, spec.seed)
    with np.load(tmp_path / result.extra["model"]) as saved:
        bench.load_model_arrays(model, {k: saved[k] for k in saved.files})
    data = bench.load_data(spec.data_seed)
    assert bench._val_loss(model, data) == pytest.approx(result.values[0], rel=1e-5)


@needs_mpiexec
def test_a_weather_convnet_trial_completes_on_two_ranks() -> None:
    from benchmarks_sci.weather import WeatherBenchmark

    spec = spec_for(
        "benchmarks_sci.weather:WeatherBenchmark",
        benchmark="weather",
        options=dict(WeatherBenchmark.tiny_options),
        params={**WeatherBenchmark.tiny_params, "method": "cnn", "batch_size": 32},
        epochs=2,
        objectives=("val_loss", "val_accuracy"),
        time_limit=300.0,
    )
    result = run_ranked_trial(spec, 2)
    assert result.status == "complete", f"{result.error}\n{result.traceback}"
    assert [h["epoch"] for h in result.history] == [0.0, 1.0]
    assert result.values is not None and all(math.isfinite(v) for v in result.values)
    assert result.metrics["n_params"] > 0 and result.metrics["node_seconds"] > 0


@needs_mpiexec
def test_a_rank_that_raises_fails_the_trial_promptly_with_its_error() -> None:
    spec = spec_for(
        f"{__name__}:TinyRegression", params={"fail_rank": 1, "fail_epoch": 1}, epochs=50
    )
    t0 = time.perf_counter()
    result = run_ranked_trial(spec, 2)
    took = time.perf_counter() - t0
    assert result.status == "failed" and result.failure == "model"
    assert result.error_type == "RuntimeError"
    assert result.error == "rank 1 of 2: rank 1 failed on purpose at epoch 1"
    assert "failed on purpose" in (result.traceback or "")
    assert took < 60, took  # rank 0, waiting in a collective, was ended, not waited for


@needs_mpiexec
def test_the_drivers_prune_verdict_stops_every_rank_at_that_epoch() -> None:
    spec = spec_for(f"{__name__}:TinyRegression", epochs=50)
    result = run_ranked_trial(spec, 2, lambda epoch, metrics: epoch == 1)
    # Rank 1 would train on alone (and rank 0 wait in its allreduce) without the verdict.
    assert result.status == "pruned", result.error
    assert [h["epoch"] for h in result.history] == [0.0, 1.0]


@needs_mpiexec
def test_a_two_rank_trial_resumes_from_its_checkpoint_and_ends_as_an_unbroken_one(
    tmp_path: Path,
) -> None:
    target = f"{__name__}:TinyRegression"
    unbroken = run_ranked_trial(spec_for(target, run_dir=str(tmp_path / "a")), 2)
    assert unbroken.status == "complete", unbroken.error
    ck = tmp_path / "ck"
    saving = {"checkpoint_dir": str(ck), "checkpoint_every": 1, "run_dir": str(tmp_path / "b")}
    died = run_ranked_trial(spec_for(target, options={"die_epoch": 2}, **saving), 2)
    assert died.status == "failed" and died.error and "died at epoch 2" in died.error
    assert [p.name for p in ck.iterdir()] == ["epoch-000001"]  # one writer: no leftovers

    resumed = run_ranked_trial(spec_for(target, **saving), 2)
    assert resumed.status == "complete", resumed.error
    assert resumed.extra["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in resumed.history] == [0.0, 1.0, 2.0, 3.0]
    for w1, w2 in zip(weights(tmp_path / "a", 3), weights(tmp_path / "b", 3), strict=True):
        np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-6)


def test_the_driver_gives_multi_rank_trials_a_checkpoint_directory(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import optuna

    from supervisor.study.recorder import Recorder

    budget = SimpleNamespace(checkpoint_every=1, fail_fast=5)
    exp = SimpleNamespace(budget=budget, ranks=2, keep_models=0)
    study = optuna.create_study()
    recorder = Recorder(exp, study, None, str(tmp_path), 3)  # type: ignore[arg-type]
    assert recorder.checkpoint_dir(study.ask()) is not None


class _FakeComm:
    def __init__(self, rank: int, sent: Any = None) -> None:
        self.rank, self.sent = rank, sent

    def bcast(self, value: Any, root: int) -> Any:
        return value if self.rank == root else self.sent


def test_only_rank_0_writes_or_reads_a_shared_checkpoint(tmp_path: Path) -> None:
    from supervisor.benchmarks import Checkpoint
    from supervisor.execution.ranks.checkpoint import SharedCheckpoint

    arrays = {"w": np.ones(3)}
    other = SharedCheckpoint(Checkpoint(tmp_path / "ck", 1, "t"), _FakeComm(rank=1))
    other.save(0, [{"epoch": 0.0}], arrays)
    assert not (tmp_path / "ck").exists()
    first = SharedCheckpoint(Checkpoint(tmp_path / "ck", 1, "t"), _FakeComm(rank=0))
    first.save(0, [{"epoch": 0.0}], arrays)
    restored = first.load()
    assert restored is not None and restored.epoch == 0
    # Another rank takes what rank 0 read, whatever is on disk now.
    (tmp_path / "ck" / "epoch-000000" / "state.json").write_text("damaged")
    other = SharedCheckpoint(Checkpoint(tmp_path / "ck", 1, "t"), _FakeComm(1, restored))
    assert other.load() is restored
    other.resumed_from = 0  # the worker's own checkpoint reports the epoch
    assert other.inner.resumed_from == 0


def test_a_benchmark_without_ranks_support_fails_before_launching() -> None:
    spec = spec_for(f"{__name__}:NoRanksToy", benchmark="toy")
    result = run_ranked_trial(spec, 2)
    assert result.status == "failed" and result.error_type == "RanksUnsupported"
    assert "does not support ranks > 1" in (result.error or "")


def launched_processes() -> list[str]:
    """argv[0] of every live process of this process's multi-rank launches (mpiexec,
    its proxy, the ranks): the launcher's pid is in their environment."""
    mine = f"SUPERVISOR_RANKS_PARENT={os.getpid()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mine in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().split(b"\0")[0].decode())
        except OSError:
            pass
    return found


@needs_mpiexec
def test_a_trial_over_its_time_limit_is_ended_with_all_its_ranks() -> None:
    live: list[str] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        live[:] = live or launched_processes()  # while it trains
        return False

    spec = spec_for(f"{__name__}:TinyRegression", epochs=100_000, time_limit=20.0)
    t0 = time.perf_counter()
    result = run_ranked_trial(spec, 2, on_epoch)
    took = time.perf_counter() - t0
    assert result.status == "failed" and result.error_type == "TimeLimitExceeded"
    assert 20 <= took < 30, took
    # Both ranks were running (found by the check below), and now nothing is.
    assert live.count(sys.executable) == 2 and any("mpiexec" in p for p in live)
    assert launched_processes() == []
