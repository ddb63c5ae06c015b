"""CosmoGAN epoch checkpoints: a GAN trial re-run after an infrastructure failure resumes
from its last checkpoint and ends where an unbroken one ends (the driver's side, which
attaches the checkpoint and keys it by retry chain, is tested in
``tests/benchmarks/test_checkpoints.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.cosmogan import CosmoGANBenchmark
from benchmarks_sci.cosmogan.data import CosmoData
from supervisor.benchmarks import Checkpoint

EPOCHS = 4
# Two batches an epoch and frequent label flips: the random stream shapes every epoch.
PARAMS = {"g_filters": 4, "d_filters": 4, "latent_dim": 8, "batch_size": 8, "label_flip": 0.3}


class Interrupt(Exception):
    pass


class Report:
    """What a worker passes to ``fit``: records reported epochs, carries the checkpoint,
    and raises (a killed trial) when epoch ``die_at`` is reported."""

    def __init__(self, checkpoint: Checkpoint | None, die_at: int | None = None) -> None:
        self.checkpoint = checkpoint
        self.die_at = die_at
        self.epochs: list[int] = []
        self.metrics: list[dict[str, float]] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == self.die_at:
            raise Interrupt
        self.epochs.append(epoch)
        self.metrics.append(metrics)
        return False


@pytest.fixture(scope="module")
def small() -> tuple[CosmoGANBenchmark, CosmoData]:
    bench = CosmoGANBenchmark(CosmoGANBenchmark.tiny_options)
    return bench, bench.load_data(seed=0)


def _weights(gan: Any) -> list[np.ndarray]:
    return [np.asarray(w) for w in gan.generator.get_weights() + gan.discriminator.get_weights()]


def test_a_resumed_gan_trains_only_the_missing_epochs_and_ends_as_an_unbroken_one(
    small: tuple[CosmoGANBenchmark, CosmoData], tmp_path: Path
) -> None:
    bench, data = small
    whole = bench.build_model(PARAMS, seed=3)
    unbroken = Report(None)
    final = bench.fit(whole, data, PARAMS, EPOCHS, unbroken)

    dying = Report(Checkpoint(tmp_path / "ck", every=1), die_at=2)
    with pytest.raises(Interrupt):  # killed at epoch 2's report, after epoch 1's checkpoint
        bench.fit(bench.build_model(PARAMS, seed=3), data, PARAMS, EPOCHS, dying)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["epoch-000001"]

    again = Report(Checkpoint(tmp_path / "ck", every=1))
    resumed = bench.build_model(PARAMS, seed=3)
    resumed.rng.random(5)  # a stream elsewhere: the checkpoint's state must replace it
    result = bench.fit(resumed, data, PARAMS, EPOCHS, again)
    assert again.checkpoint is not None and again.checkpoint.resumed_from == 1
    assert again.epochs == list(range(EPOCHS))  # epochs 0, 1 reported again, then 2, 3
    assert again.metrics[:2] == unbroken.metrics[:2]
    assert result == pytest.approx(final, rel=1e-4)
    for a, b in zip(_weights(whole), _weights(resumed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Adam's step counts came back too: the optimizers stand where the unbroken ones do.
    assert int(resumed.g_optimizer.iterations) == int(whole.g_optimizer.iterations) == 2 * EPOCHS


def test_a_checkpoint_of_another_gan_is_ignored_and_the_trial_restarts(
    small: tuple[CosmoGANBenchmark, CosmoData], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bench, data = small
    with pytest.raises(Interrupt):
        bench.fit(
            bench.build_model(PARAMS, seed=3),
            data,
            PARAMS,
            EPOCHS,
            Report(Checkpoint(tmp_path / "ck", every=1), die_at=2),
        )
    wider = {**PARAMS, "g_filters": 8}  # same identity on disk, other shapes
    report = Report(Checkpoint(tmp_path / "ck", every=1))
    with caplog.at_level(logging.WARNING):
        bench.fit(bench.build_model(wider, seed=3), data, wider, EPOCHS, report)
    assert report.checkpoint is not None and report.checkpoint.resumed_from is None
    assert report.epochs == list(range(EPOCHS))
    assert "another model" in caplog.text


def test_a_stop_during_the_replayed_epochs_trains_nothing_more(
    small: tuple[CosmoGANBenchmark, CosmoData], tmp_path: Path
) -> None:
    """A pruner may stop the re-run at a restored epoch: its scores are that epoch's."""
    bench, data = small
    dying = Report(Checkpoint(tmp_path / "ck", every=1), die_at=2)
    with pytest.raises(Interrupt):
        bench.fit(bench.build_model(PARAMS, seed=3), data, PARAMS, EPOCHS, dying)
    stopped: list[int] = []

    class StopAtZero(Report):
        def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
            stopped.append(epoch)
            return True

    gan = bench.build_model(PARAMS, seed=3)
    result = bench.fit(gan, data, PARAMS, EPOCHS, StopAtZero(Checkpoint(tmp_path / "ck", 1)))
    assert stopped == [0]
    assert result["val_score"] == dying.metrics[0]["val_score"]
    assert int(gan.g_optimizer.iterations) == 4  # 2 restored epochs of 2 steps, none after
