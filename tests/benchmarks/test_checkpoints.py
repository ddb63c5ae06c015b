"""Epoch checkpoints: a trial re-run after an infrastructure failure resumes, not restarts.

Unit tests drive ``keras_fit.fit_reporting`` with a ``Checkpoint`` directly; the
end-to-end test runs a campaign whose trial process SIGKILLs itself mid-trial, after a
checkpoint, and checks the re-run's epochs, learning curve and clean-up.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from supervisor.benchmarks import (
    Benchmark,
    Checkpoint,
    Direction,
    EpochReport,
    Option,
    checkpoint_of,
)

TARGET = "tests.benchmarks.test_checkpoints:KerasToy"
EPOCHS = 5


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 4)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]


def _model(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    # Adam: its moments are state a resumed fit must get back to match an unbroken one.
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


class KerasToy(Benchmark):
    """A tiny Keras regression on the shared loop. Options make its trial process kill
    itself once (a marker file remembers) when it is about to report ``die_at``."""

    name = "keras-toy"
    metrics: ClassVar[dict[str, Direction]] = {"loss": "minimize"}
    options: ClassVar[dict[str, Option]] = {
        "die_at": Option(-1, "epoch whose report the first attempt dies at"),
        "folder": Option("", "where the marker and the log of epochs trained go"),
    }

    def load_data(self, seed: int) -> Any:
        return _data(seed)

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        return _model(seed)

    def fit(
        self, model: Any, data: Any, params: Mapping[str, Any], epochs: int, report: EpochReport
    ) -> dict[str, float]:
        from benchmarks_sci.keras_fit import fit_reporting

        folder = Path(self.config["folder"])
        tag = repr(params.get("x"))

        def trained(epoch: int) -> float:  # called at the start of every trained epoch only
            with open(folder / "trained.log", "a") as f:
                f.write(f"{tag} {epoch}\n")
            return 0.05

        def dying(epoch: int, metrics: dict[str, float]) -> bool:
            marker = folder / "died"
            if epoch == self.config["die_at"] and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return report(epoch, metrics)

        x, y = data
        outcome = fit_reporting(
            model,
            x,
            y,
            batch_size=len(x),
            epochs=epochs,
            report=dying,
            validate=lambda m, _: {"loss": float(np.mean((m.predict(x, verbose=0) - y) ** 2))},
            val_reported=("loss",),
            learning_rate=trained,
            checkpoint=checkpoint_of(report),  # ``dying`` wraps the worker's report
        )
        return {"loss": outcome.val["loss"]}

    def predict(self, model: Any, x: Any) -> Any:
        return model.predict(x, verbose=0)

    def save_data(self, data: Any, path: Path) -> None:
        np.savez(path, x=data[0], y=data[1])


class Interrupt(Exception):
    pass


def _fit(
    model: Any, ckpt: Checkpoint | None, stop_at: int | None = None
) -> tuple[list[int], int, Any]:
    """Reported epochs, epochs trained (validated), outcome; raises at ``stop_at``'s report."""
    from benchmarks_sci.keras_fit import fit_reporting

    x, y = _data()
    reported: list[int] = []
    validated = [0]

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == stop_at:
            raise Interrupt
        reported.append(epoch)
        return False

    def validate(m: Any, _: bool) -> dict[str, float]:
        validated[0] += 1
        return {"loss": float(np.mean((m.predict(x, verbose=0) - y) ** 2))}

    outcome = fit_reporting(
        model,
        x,
        y,
        batch_size=len(x),  # one batch: shuffling cannot make runs differ
        epochs=EPOCHS,
        report=report,
        validate=validate,
        val_reported=("loss",),
        checkpoint=ckpt,
    )
    return reported, validated[0], outcome


def _weights(model: Any) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_resumed_fit_continues_and_matches_an_unbroken_one(tmp_path: Path) -> None:
    whole = _model(7)
    reported, validated, _ = _fit(whole, None)
    assert reported == list(range(EPOCHS)) and validated == EPOCHS

    ckpt = Checkpoint(tmp_path / "ck", every=1)
    with pytest.raises(Interrupt):
        _fit(_model(7), ckpt, stop_at=3)  # killed in epoch 3, after the checkpoint of 2
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["epoch-000002"]

    again = Checkpoint(tmp_path / "ck", every=1)
    resumed = _model(99)  # other initial weights: everything must come from the checkpoint
    reported, validated, _ = _fit(resumed, again)
    assert again.resumed_from == 2
    assert reported == list(range(EPOCHS))  # restored epochs 0..2 reported again, then 3, 4
    assert validated == 2  # only epochs 3 and 4 were trained
    for a, b in zip(_weights(whole), _weights(resumed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "garbage state", "other model", "partial"])
def test_a_bad_checkpoint_is_ignored_and_the_fit_restarts(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = Checkpoint(tmp_path / "ck", every=1)
    with pytest.raises(Interrupt):
        _fit(_model(1), ckpt, stop_at=2)
    saved = tmp_path / "ck" / "epoch-000001"
    if damage == "truncate":
        arrays = saved / "state.npz"
        arrays.write_bytes(arrays.read_bytes()[:100])
    elif damage == "garbage state":
        (saved / "state.json").write_text('{"epoch": 1, "hist')
    elif damage == "other model":
        import keras

        other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        other.compile(optimizer="adam", loss="mse")
        with caplog.at_level(logging.WARNING):
            reported, validated, _ = _fit(other, Checkpoint(tmp_path / "ck", every=0))
        assert reported == list(range(EPOCHS)) and validated == EPOCHS
        assert "another model" in caplog.text
        return
    else:  # killed while writing: only a temporary directory is there
        os.rename(saved, tmp_path / "ck" / ".tmp-1-epoch-000001")
    with caplog.at_level(logging.WARNING):
        again = Checkpoint(tmp_path / "ck", every=0)
        reported, validated, outcome = _fit(_model(1), again)
    assert again.resumed_from is None
    assert reported == list(range(EPOCHS)) and validated == EPOCHS  # from epoch 0
    assert np.isfinite(outcome.val["loss"])
    if damage != "partial":
        assert "ignoring unreadable checkpoint" in caplog.text


def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path, every=1)
    ckpt.save(0, [{"epoch": 0.0, "loss": 1.0}], {"w": np.ones(3)})
    partial = tmp_path / ".tmp-123-epoch-000001"  # the next save, killed half way
    partial.mkdir()
    (partial / "state.npz").write_bytes(b"PK\x03\x04")
    restored = ckpt.load()
    assert restored is not None and restored.epoch == 0
    assert restored.history == [{"epoch": 0.0, "loss": 1.0}]
    np.testing.assert_array_equal(restored.arrays["w"], np.ones(3))
    assert not ckpt.due(4, 5) and ckpt.due(3, 5)  # never after the last epoch
    assert Checkpoint(tmp_path, every=1, identity="another trial").load() is None
    ckpt.clear()
    assert not tmp_path.exists()


# -- end to end ---------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    from supervisor.clusters.handle import configure_dask

    with (
        configure_dask(),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.mark.faults
def test_a_killed_trial_resumes_from_its_checkpoint(tmp_path: Path, client: Any) -> None:
    import optuna
    from optuna.trial import TrialState

    from supervisor.config import space
    from supervisor.study import attrs
    from supervisor.study.driver import Driver

    path = tmp_path / "space.yaml"
    path.write_text(
        f'benchmark: {{name: "{TARGET}", options: {{die_at: 2, folder: "{tmp_path}"}}}}\n'
        "objectives: [loss]\nparams:\n  x: {type: float, low: 0, high: 1}\n"
        "budget: {trials: 2, epochs: 4, checkpoint_every: 1}\nsampler: random\nseed: 3\n"
    )
    exp = space.load(path)
    study = optuna.create_study(
        study_name=exp.study_name,
        directions=exp.directions,
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    summary = Driver(exp, study, client, slots=1, run_dir=str(tmp_path)).run()
    assert summary.finished == 2

    trials = study.get_trials(deepcopy=False)
    (dead,) = [t for t in trials if t.state == TrialState.FAIL]
    assert dead.user_attrs[attrs.FAILURE] == "infrastructure"
    assert sorted(dead.intermediate_values) == [0, 1]  # killed about to report epoch 2
    (rerun,) = [t for t in trials if t.user_attrs.get(attrs.RETRY_OF) == dead.number]
    assert rerun.state == TrialState.COMPLETE
    assert rerun.user_attrs["resumed_from_epoch"] == 1
    # Its learning curve is whole, each epoch once; epochs 0 and 1 are the restored ones.
    assert sorted(rerun.intermediate_values) == [0, 1, 2, 3]
    assert [int(e["epoch"]) for e in rerun.user_attrs["history"]] == [0, 1, 2, 3]
    for epoch in (0, 1):
        assert rerun.intermediate_values[epoch] == dead.intermediate_values[epoch]
    # What was trained: 0, 1 and (killed in) 2 first; the re-run trained 2 and 3 only.
    lines = (tmp_path / "trained.log").read_text().split("\n")
    epochs = [int(line.split()[1]) for line in lines if line.startswith(repr(dead.params["x"]))]
    assert epochs == [0, 1, 2, 2, 3]
    # Finished chains leave no checkpoints behind.
    assert list((tmp_path / "checkpoints").iterdir()) == []
