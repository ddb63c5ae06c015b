"""The science benchmarks train under the node's mixed precision policies (``node:
precision``; ``auto`` picks mixed_bfloat16 on A100/H100 GPUs and mixed_float16 on older
ones), here on the CPU: the trial completes with finite metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from supervisor.execution.execute import execute
from supervisor.execution.node import NodeSettings
from tests.benchmarks.test_conformance import NAMES, bench_class, trial


def _run(name: str, precision: str) -> dict[str, float]:
    result = execute(trial(name, epochs=1, node=NodeSettings(precision=precision)))
    assert result.status == "complete", f"{result.error_type}: {result.error}"
    assert result.extra["precision"] == precision
    for metric in bench_class(name).metrics:
        assert math.isfinite(result.metrics[metric]), metric
    return result.metrics


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_trains_under_mixed_bfloat16(name: str) -> None:
    _run(name, "mixed_bfloat16")


def test_the_gan_trains_under_mixed_float16_with_scaled_losses() -> None:
    _run("cosmogan", "mixed_float16")


def test_the_gan_makes_float32_maps_and_logits_under_a_mixed_policy() -> None:
    import keras

    from benchmarks_sci.cosmogan.benchmark import CosmoGANBenchmark

    bench = CosmoGANBenchmark(CosmoGANBenchmark.tiny_options)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        gan = bench.build_model(CosmoGANBenchmark.tiny_params, 0)
        maps = gan.generator(gan.latents(2, 0))
        logits = gan.discriminator(maps)
    finally:
        keras.config.set_dtype_policy("float32")
    # The pixel histogram is scored on the maps, the losses on the logits: not in float16.
    dtype = keras.backend.standardize_dtype
    assert dtype(maps.dtype) == dtype(logits.dtype) == "float32"
    assert np.isfinite(keras.ops.convert_to_numpy(maps)).all()
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("name", ["weather", "speech"])
def test_classifiers_give_float32_probabilities_under_mixed_bfloat16(name: str) -> None:
    import keras

    cls = bench_class(name)
    bench = cls(cls.tiny_options)
    data = bench.load_data(0)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = bench.build_model(cls.tiny_params, 0)
    finally:
        keras.config.set_dtype_policy("float32")
    probs = np.asarray(bench.predict(model, data.x_val))
    # bfloat16 keeps 8 significant bits: most validation inputs' probabilities would tie
    # (weather, tiny: 49 distinct values for 64 patches), and the scores with them.
    assert len(np.unique(probs[:, 0])) == len(probs)
