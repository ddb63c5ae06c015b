"""A science trial killed mid-training and re-run from its epoch checkpoint ends exactly
where an unbroken one ends: weights, optimizer, learning-rate schedule and random state
(dropout masks, shuffling) all come back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from supervisor.benchmarks import Checkpoint

EPOCHS = 4


class Interrupt(Exception):
    pass


class Report:
    """What a worker passes to ``fit``: records each epoch's metrics, carries the
    checkpoint, and dies at the report of ``die_at`` (an infrastructure failure)."""

    def __init__(self, checkpoint: Checkpoint | None, die_at: int | None = None) -> None:
        self.checkpoint = checkpoint
        self.die_at = die_at
        self.curve: list[dict[str, float]] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == self.die_at:
            raise Interrupt
        self.curve.append(metrics)
        return False


ROOT = Path(__file__).resolve().parents[2]


def test_a_resumed_speech_trial_with_dropout_matches_an_unbroken_one(tmp_path: Path) -> None:
    check_resume_matches(tmp_path)


def test_it_matches_on_the_jax_backend_too(tmp_path: Path) -> None:
    # Keras shuffles with numpy's global stream on JAX, which the checkpoint must carry.
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    script = (
        "import sys, keras; from pathlib import Path; "
        "from tests.benchmarks_sci.test_resume import check_resume_matches; "
        "assert keras.backend.backend() == 'jax'; check_resume_matches(Path(sys.argv[1]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def check_resume_matches(tmp_path: Path) -> None:
    from benchmarks_sci.speech.benchmark import SpeechBenchmark

    bench = SpeechBenchmark(SpeechBenchmark.tiny_options)
    data = bench.load_data(0)
    # Dropout, several shuffled batches per epoch and a decaying learning rate: every
    # piece of state a resumed trial must get back.
    params: dict[str, Any] = {"units": 32, "batch_size": 16, "dropout": 0.5, "lr_decay": 0.3}
    unbroken = Report(None)
    whole = bench.fit(bench.build_model(params, 1), data, params, EPOCHS, unbroken)

    with pytest.raises(Interrupt):  # killed at epoch 2's report, after epoch 1's checkpoint
        bench.fit(
            bench.build_model(params, 1),
            data,
            params,
            EPOCHS,
            Report(Checkpoint(tmp_path, every=1), die_at=2),
        )
    again = Report(Checkpoint(tmp_path, every=1))
    resumed = bench.fit(bench.build_model(params, 1), data, params, EPOCHS, again)

    assert again.checkpoint is not None and again.checkpoint.resumed_from == 1
    # Epochs 2 and 3 were trained after the restore: their losses depend on the dropout
    # masks drawn, which repeated epoch 0's before the dropout seeds were checkpointed.
    np.testing.assert_allclose(
        [m["loss"] for m in again.curve], [m["loss"] for m in unbroken.curve], rtol=1e-5
    )
    assert resumed == pytest.approx(whole, rel=1e-5)
