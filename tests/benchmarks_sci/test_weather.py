"""The weather benchmark: synthetic cyclone, river and front patches, the seed's ConvNets,
real-data files. (The classical baselines: tests/benchmarks_sci/test_weather_baselines.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.weather import WeatherBenchmark, synthetic_ar, synthetic_wf
from benchmarks_sci.weather.benchmark import TASKS, WeatherData, predict_batch, roc_auc
from benchmarks_sci.weather.model import resolve_params
from benchmarks_sci.weather.synthetic import (
    CHANNELS,
    DEFAULT_DIFFICULTY,
    KINDS,
    TCBatch,
    channel_stats,
    generate_tc,
    make_tc_dataset,
    standardize,
)
from benchmarks_sci.weather.synthetic_ar import ARBatch, generate_ar
from benchmarks_sci.weather.synthetic_wf import WFBatch, generate_wf
from supervisor.benchmarks import OptionError

PSL, UBOT, VBOT, TMQ, T200, T500 = (
    CHANNELS.index(c) for c in ("PSL", "UBOT", "VBOT", "TMQ", "T200", "T500")
)
SMALL = {"n_train": 512, "n_val": 256, "n_test": 256}
FAST = {"batch_size": 64}


def cyclonic_vorticity(batch: TCBatch) -> np.ndarray:
    """dv/dx - du/dy of the surface wind (rows run northward), times the hemisphere."""
    x = batch.x
    vort = np.gradient(x[..., VBOT], axis=2) - np.gradient(x[..., UBOT], axis=1)
    return vort * batch.hemisphere[:, None, None]


def at_centre(field: np.ndarray, batch: TCBatch) -> np.ndarray:
    """``field`` [n, 32, 32] at the grid point nearest each sample's main system."""
    rc = np.clip(np.rint(batch.centre).astype(int), 0, 31)
    return field[np.arange(len(field)), rc[:, 0], rc[:, 1]]


def anomaly(batch: TCBatch, channel: int) -> np.ndarray:
    """Mean over 5 x 5 points around the main system minus the patch mean."""
    field = batch.x[..., channel]
    rc = np.clip(np.rint(batch.centre).astype(int), 2, 29)
    rows = rc[:, 0, None] + np.arange(-2, 3)
    cols = rc[:, 1, None] + np.arange(-2, 3)
    n = np.arange(len(field))[:, None, None]
    return field[n, rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2)) - field.mean(axis=(1, 2))


@pytest.fixture(scope="module")
def batch() -> TCBatch:
    return generate_tc(1500, seed=11)


@pytest.fixture(scope="module")
def small() -> tuple[WeatherBenchmark, WeatherData]:
    bench = WeatherBenchmark(SMALL)
    return bench, bench.load_data(seed=0)


# --- generator -------------------------------------------------------------------------


def test_generator_is_deterministic_under_a_seed_and_differs_across_seeds() -> None:
    x1, y1 = make_tc_dataset(300, seed=3)
    x2, y2 = make_tc_dataset(300, seed=3)
    x3, y3 = make_tc_dataset(300, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.allclose(x1, x3) and not np.array_equal(y1, y3)
    # A SeedSequence works too and is not consumed by the call.
    seq = np.random.SeedSequence(3)
    assert np.array_equal(make_tc_dataset(300, seq)[0], make_tc_dataset(300, seq)[0])


def test_generator_gives_the_same_bits_on_any_number_of_threads() -> None:
    one, two = generate_tc(1100, seed=5, threads=1), generate_tc(1100, seed=5, threads=2)
    for field in ("x", "y", "kind", "centre", "hemisphere"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field


def test_shapes_dtypes_and_balanced_labels() -> None:
    x, y = make_tc_dataset(301, seed=0)
    assert x.shape == (301, 32, 32, 8) and x.dtype == np.float32
    assert y.shape == (301,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1} and int(y.sum()) == 150
    assert np.isfinite(x).all()
    assert 0.3 < y[:150].mean() < 0.7  # shuffled, not sorted by class
    assert CHANNELS == ("PSL", "UBOT", "VBOT", "TMQ", "U850", "V850", "T200", "T500")


def test_fields_are_in_plausible_physical_ranges(batch: TCBatch) -> None:
    x = batch.x
    assert x[..., PSL].min() > 95_000 and x[..., PSL].max() < 105_000  # Pa
    assert np.percentile(x[..., TMQ], 1) >= 0 and np.percentile(x[..., TMQ], 99) < 90
    assert x[..., T200].min() > 205 and x[..., T200].max() < 235  # K
    assert x[..., T500].min() > 250 and x[..., T500].max() < 285
    assert np.abs(x[..., [UBOT, VBOT]]).max() < 100  # m/s


def test_cyclones_are_warm_moist_lows_with_cyclonic_winds(batch: TCBatch) -> None:
    pos = batch.y == 1
    assert np.all(batch.kind[pos] == KINDS.index("tropical_cyclone"))
    assert not np.any(batch.kind[~pos] == KINDS.index("tropical_cyclone"))
    # Lower pressure, moister and warmer aloft at the vortex than at negatives' centres.
    for channel, sign in ((PSL, -1), (TMQ, 1), (T200, 1), (T500, 1)):
        diff = anomaly(batch, channel)[pos].mean() - anomaly(batch, channel)[~pos].mean()
        assert sign * diff > 0, CHANNELS[channel]
    # Weak cyclones may hide in the noise at the default difficulty, strong ones never do.
    easy = generate_tc(500, seed=12, difficulty=0.0)
    assert np.all(anomaly(easy, PSL)[easy.y == 1] < 0)
    assert np.all(anomaly(easy, T200)[easy.y == 1] > 0)
    # Winds turn cyclonically: counter-clockwise in the north, clockwise in the south.
    vort = at_centre(cyclonic_vorticity(batch), batch)
    assert np.mean(vort[pos] > 0) > 0.98
    raw = at_centre(np.gradient(batch.x[..., VBOT], axis=2), batch) - at_centre(
        np.gradient(batch.x[..., UBOT], axis=1), batch
    )
    north, south = pos & (batch.hemisphere > 0), pos & (batch.hemisphere < 0)
    assert north.sum() > 100 and south.sum() > 100
    assert np.mean(raw[north] > 0) > 0.98 and np.mean(raw[south] < 0) > 0.98


def test_negatives_hold_the_documented_distractors(batch: TCBatch) -> None:
    kinds = set(batch.kind[batch.y == 0].tolist())
    assert kinds == set(range(len(KINDS))) - {KINDS.index("tropical_cyclone")}
    # Cold-core lows are lows too, but cold at 500 hPa: pressure alone does not decide.
    cold = batch.kind == KINDS.index("cold_core_low")
    assert anomaly(batch, PSL)[cold].mean() < 0 and anomaly(batch, T500)[cold].mean() < 0


def test_higher_difficulty_separates_the_classes_less() -> None:
    def separation(difficulty: float) -> float:
        b = generate_tc(1500, seed=1, difficulty=difficulty)
        strongest = cyclonic_vorticity(b).max(axis=(1, 2))
        return roc_auc(strongest, b.y)

    levels = [separation(d) for d in (0.0, 0.5, 1.0)]
    assert levels[0] > levels[1] > levels[2] > 0.6, levels
    with pytest.raises(ValueError, match="difficulty"):
        make_tc_dataset(10, seed=0, difficulty=1.5)


def test_channel_stats_and_standardize() -> None:
    x, _ = make_tc_dataset(200, seed=2)
    mean, std = channel_stats(x)
    ref = x.astype(np.float64)
    assert np.allclose(mean, ref.mean(axis=(0, 1, 2)), rtol=1e-6)
    assert np.allclose(std, ref.std(axis=(0, 1, 2)), rtol=1e-4)
    out = standardize(x, mean, std)
    assert out is x  # in place: data sets are large
    assert np.allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    assert np.allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)


# --- options and hyper-parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"difficulty": 1.5}, "difficulty"),
        ({"difficulty": "hard"}, "difficulty"),
        ({"n_train": 0}, "n_train"),
        ({"n_val": 2.5}, "n_val"),
        ({"task": "tornado"}, "task"),
        ({"data_path": "patches.csv"}, "data_path"),
        ({"n_trian": 100}, "n_trian"),
    ],
)
def test_bad_options_raise_an_option_error_naming_the_key(
    options: dict[str, object], key: str
) -> None:
    with pytest.raises(OptionError) as info:
        WeatherBenchmark(options)
    assert info.value.key == key


def test_defaults_are_the_seed_setting() -> None:
    config = WeatherBenchmark().config
    assert config == {
        "task": "tc",
        "n_train": 8000,
        "n_val": 2000,
        "n_test": 2000,
        "difficulty": DEFAULT_DIFFICULTY,
        "data_path": "",
    }
    hp = resolve_params({})
    assert (hp.filters1, hp.filters2, hp.kernel_size, hp.dense_units) == (8, 16, 5, 50)
    assert (hp.optimizer, hp.learning_rate, hp.batch_size) == ("adam", 1e-3, 128)
    assert (hp.dropout, hp.l2, hp.momentum, hp.activation) == (0.0, 0.0, 0.0, "relu")


def test_unknown_hyper_parameter_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'learnig_rate'.*did you mean 'learning_rate'"):
        WeatherBenchmark(SMALL).build_model({"learnig_rate": 0.1}, seed=0)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"activation": "relux"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"filters1": 2.5}, "filters1"),
        ({"dense_units": True}, "dense_units"),
    ],
)
def test_bad_hyper_parameter_values_are_errors_naming_them(
    params: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        resolve_params(params)


def test_integral_floats_are_accepted_for_integer_parameters() -> None:
    assert resolve_params({"filters1": 8.0, "momentum": 0}).filters1 == 8


def test_package_import_stays_free_of_keras() -> None:
    code = (
        "import sys, benchmarks_sci.weather as w; w.WeatherBenchmark.validate_options({}); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# --- training --------------------------------------------------------------------------


def test_load_data_standardises_with_training_statistics(
    small: tuple[WeatherBenchmark, WeatherData],
) -> None:
    _, data = small
    assert data.x_train.shape == (512, 32, 32, 8) and data.x_val.shape == (256, 32, 32, 8)
    assert data.x_train.dtype == np.float32 and data.channels == CHANNELS
    assert np.allclose(data.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-3)
    assert np.allclose(data.x_train.std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert [int(y.sum()) for y in (data.y_train, data.y_val, data.y_test)] == [256, 128, 128]
    # Splits come from independent streams: a larger training set, the same validation set.
    bigger = WeatherBenchmark({**SMALL, "n_train": 600}).load_data(seed=0)
    raw_val = bigger.x_val * bigger.std + bigger.mean
    assert np.allclose(raw_val, data.x_val * data.std + data.mean, rtol=1e-5, atol=1e-3)


def recorder(
    stop_after: int | None = None, finite: bool = True
) -> tuple[list[int], Callable[..., bool]]:
    epochs: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(metrics)
        assert all(isinstance(v, float) for v in metrics.values())
        assert not finite or all(np.isfinite(v) for v in metrics.values())
        epochs.append(epoch)
        return stop_after is not None and epoch >= stop_after

    return epochs, report


def test_fit_reports_every_epoch_and_returns_the_metrics(
    small: tuple[WeatherBenchmark, WeatherData],
) -> None:
    bench, data = small
    params = {**FAST, "dense_units": 16, "optimizer": "sgd", "momentum": 0.9}
    model = bench.build_model(params, seed=0)
    epochs, report = recorder()
    metrics = bench.fit(model, data, params, 2, report)
    assert epochs == [0, 1]
    assert set(metrics) == set(WeatherBenchmark.metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["val_loss"] > 0
    probs = bench.predict(model, data.x_test)
    assert probs.shape == (256, 2) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    acc = float(np.mean(probs.argmax(axis=1) == data.y_test))
    assert acc == pytest.approx(metrics["test_accuracy"])


def test_fit_stops_when_report_says_so(small: tuple[WeatherBenchmark, WeatherData]) -> None:
    bench, data = small
    epochs, report = recorder(stop_after=0)
    metrics = bench.fit(bench.build_model(FAST, seed=0), data, FAST, 5, report)
    assert epochs == [0]
    assert np.isfinite(metrics["val_accuracy"])


def test_a_diverging_trial_stops_and_returns_nan(
    small: tuple[WeatherBenchmark, WeatherData],
) -> None:
    bench, data = small
    params = {**FAST, "optimizer": "sgd", "learning_rate": 10.0, "momentum": 0.9}
    epochs, report = recorder(finite=False)
    metrics = bench.fit(bench.build_model(params, seed=0), data, params, 3, report)
    assert epochs == [0]  # stopped within the first epoch
    assert all(np.isnan(v) for v in metrics.values())  # not a coin-flip val_accuracy


def test_same_seed_gives_the_same_result(small: tuple[WeatherBenchmark, WeatherData]) -> None:
    bench, data = small
    params = {**FAST, "dropout": 0.2}

    def run(seed: int) -> dict[str, float]:
        return bench.fit(bench.build_model(params, seed), data, params, 1, lambda e, m: False)

    assert run(seed=9) == run(seed=9)
    # Another seed starts from other weights (and so trains differently).
    kernels = [bench.build_model(params, seed).get_weights()[0] for seed in (9, 10)]
    assert not np.allclose(*kernels)


def test_the_convnet_has_the_seed_architecture() -> None:
    model = WeatherBenchmark(SMALL).build_model({}, seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"] == (32, 32, 8) and shapes["pool1"] == (16, 16, 8)
    assert shapes["conv2"] == (16, 16, 16) and shapes["pool2"] == (8, 8, 16)
    assert shapes["fc"] == (50,) and shapes["out"] == (2,)
    assert model.get_layer("conv1").kernel.shape[:2] == (5, 5)


def test_roc_auc_counts_ties_half() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7]), y) == 1.0
    assert roc_auc(np.array([0.5] * 6), y) == 0.5
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.9]), y) == pytest.approx(7 / 9)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


# --- real data files -------------------------------------------------------------------


def write_arrays(path: Path, rng: np.random.Generator, **changes: np.ndarray) -> dict:
    arrays: dict[str, Any] = {}
    for split, n in (("train", 40), ("val", 20), ("test", 10)):
        arrays[f"x_{split}"] = rng.normal(50.0, 3.0, size=(n, 32, 32, 8)).astype(np.float32)
        arrays[f"y_{split}"] = np.arange(n) % 2
    arrays.update(changes)
    np.savez(path, **arrays)
    return arrays


def test_npz_file_round_trips(tmp_path: Path) -> None:
    arrays = write_arrays(tmp_path / "tc.npz", np.random.default_rng(0))
    data = WeatherBenchmark({"data_path": str(tmp_path / "tc.npz")}).load_data(seed=0)
    assert data.x_train.shape == (40, 32, 32, 8) and data.x_test.shape == (10, 32, 32, 8)
    for split in ("train", "val", "test"):
        assert np.array_equal(getattr(data, f"y_{split}"), arrays[f"y_{split}"])
        restored = getattr(data, f"x_{split}") * data.std + data.mean
        assert np.allclose(restored, arrays[f"x_{split}"], atol=1e-3)
    assert np.allclose(data.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    assert np.allclose(data.standardize(arrays["x_val"]), data.x_val, atol=1e-5)


def test_npz_file_in_channels_first_and_one_hot_is_accepted(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x_val = rng.normal(size=(20, 8, 32, 32)).astype(np.float32)
    y_val = np.eye(2, dtype=np.float32)[np.arange(20) % 2]
    write_arrays(tmp_path / "cf.npz", rng, x_val=x_val, y_val=y_val)
    data = WeatherBenchmark({"data_path": str(tmp_path / "cf.npz")}).load_data(seed=0)
    assert np.array_equal(data.y_val, np.arange(20) % 2)
    restored = data.x_val * data.std + data.mean
    assert np.allclose(restored, np.moveaxis(x_val, 1, -1), atol=1e-4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x_train": None}, "missing array 'x_train'"),
        ({"x_val": np.zeros((20, 16, 16, 8), np.float32)}, r"x_val has shape \(20, 16, 16, 8\)"),
        ({"y_test": np.arange(10) % 3}, "y_test must hold labels 0/1"),
        ({"y_train": np.zeros(39, np.int64)}, "x_train has 40 patches but y_train 39"),
        ({"x_test": np.full((10, 32, 32, 8), np.nan, np.float32)}, "x_test contains NaN"),
        # An empty split: no statistics (train) or NaN scores failing every trial (val).
        (
            {"x_train": np.zeros((0, 32, 32, 8), np.float32), "y_train": np.zeros(0, int)},
            "bad.npz: x_train holds no patches",
        ),
        (
            {"x_val": np.zeros((0, 32, 32, 8), np.float32), "y_val": np.zeros(0, int)},
            "bad.npz: x_val holds no patches",
        ),
        # One class: val_auc NaN failed every trial as diverged; nothing learnt from it.
        ({"y_val": np.zeros(20, int)}, r"bad.npz: y_val holds label 0 only: the val split"),
        ({"y_train": np.ones(40, int)}, r"bad.npz: y_train holds label 1 only: the train"),
        # Rows argmax would silently read as class 0.
        ({"y_val": np.ones((20, 2))}, r"y_val is \(n, 2\) but not one-hot"),
        ({"y_val": np.full((20, 2), 0.5)}, r"y_val is \(n, 2\) but not one-hot"),
        ({"x_val": np.ones((20, 32, 32, 8), np.complex64)}, "x_val is not real numbers"),
    ],
)
def test_bad_files_are_clear_errors(
    tmp_path: Path, changes: dict[str, np.ndarray | None], message: str
) -> None:
    path = tmp_path / "bad.npz"
    arrays = write_arrays(path, np.random.default_rng(2))
    np.savez(path, **{k: v for k, v in {**arrays, **changes}.items() if v is not None})
    with pytest.raises(ValueError, match=message):
        WeatherBenchmark({"data_path": str(path)}).load_data(seed=0)


def test_hdf5_file_is_read(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "tc.h5"
    arrays = write_arrays(tmp_path / "tc.npz", np.random.default_rng(3))
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f[name] = value
    data = WeatherBenchmark({"data_path": str(path)}).load_data(seed=0)
    assert np.array_equal(data.y_val, arrays["y_val"])


# --- atmospheric rivers and weather fronts ---------------------------------------------

# One batch per split: a single shape for Keras to trace (or XLA to compile) per model.
TINY = {task: {"n_train": 16, "n_val": 16, "n_test": 16} for task in ("tc", "ar", "wf")}
# Small ConvNets of each task's architecture (the AR one has 2.9 M weights by default).
TINY_CNN = {"filters1": 2, "filters2": 4, "dense_units": 8, "batch_size": 16}
GENERATORS = {
    "ar": (synthetic_ar.make_ar_dataset, synthetic_ar.AR_SHAPE, 70),  # > 2 chunks of 32
    "wf": (synthetic_wf.make_wf_dataset, synthetic_wf.WF_SHAPE, 300),  # > 1 chunk of 256
}


@pytest.mark.parametrize("task", ["ar", "wf"])
def test_ar_and_wf_generators_are_deterministic_balanced_and_thread_independent(
    task: str,
) -> None:
    make, shape, n = GENERATORS[task]
    x1, y1 = make(n, 3, threads=1)
    x2, y2 = make(n, 3, threads=2)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = make(n, 4)
    assert not np.allclose(x1, x3)
    seq = np.random.SeedSequence(3)  # not consumed by the call
    assert np.array_equal(make(n, seq)[0], make(n, seq)[0])
    assert x1.shape == (n, *shape) and x1.dtype == np.float32 and np.isfinite(x1).all()
    assert y1.dtype == np.int64 and int(y1.sum()) == n // 2
    assert 0.3 < y1[: n // 2].mean() < 0.7  # shuffled, not sorted by class
    with pytest.raises(ValueError, match="difficulty"):
        make(4, 0, difficulty=-0.1)


@pytest.fixture(scope="module")
def rivers() -> ARBatch:
    return generate_ar(240, seed=21, difficulty=0.0)


def coast_bump(batch: ARBatch, inland: int = 3, span: int = 45) -> np.ndarray:
    """TMQ just inland of the coast on the row of each sample's main plume, minus its
    mean ``span`` rows either side (which cancels the background's poleward gradient)."""
    tmq, land = batch.x[..., 0], batch.x[..., 1]
    coast = np.argmax(land >= 1, axis=2)  # [n, H]: the first land column of every row
    n = np.arange(len(tmq))
    profile = tmq[n[:, None], np.arange(tmq.shape[1]), np.minimum(coast + inland, 223)]
    row = np.rint(batch.anchor[:, 0]).astype(int)
    low, high = np.maximum(row - span, 0), np.minimum(row + span, tmq.shape[1] - 1)
    return profile[n, row] - (profile[n, low] + profile[n, high]) / 2


def test_ar_patches_are_moist_tropics_and_a_west_coast(rivers: ARBatch) -> None:
    tmq, land = rivers.x[..., 0], rivers.x[..., 1]
    assert synthetic_ar.CHANNELS == ("TMQ", "LANDFRAC")
    assert tmq.min() > 0 and np.percentile(tmq, 99) < 80  # kg/m^2
    assert land.min() == 0 and land.max() == 1
    # Sea in the west, land in the east, one coastline per row.
    assert (land[..., 0] == 0).all() and (land[..., -1] == 1).all()
    assert (np.diff(land, axis=2) >= 0).all()
    assert 0.1 < land.mean() < 0.5
    # Moisture falls poleward and is lower over land.
    assert (tmq[:, :20].mean(axis=(1, 2)) > tmq[:, -20:].mean(axis=(1, 2))).mean() > 0.95
    assert tmq[land == 1].mean() < tmq[land == 0].mean()


def test_rivers_carry_moisture_across_the_coast_and_decoys_do_not(rivers: ARBatch) -> None:
    kind = rivers.kind
    assert np.all(kind[rivers.y == 1] == synthetic_ar.ATMOSPHERIC_RIVER)
    assert set(kind[rivers.y == 0].tolist()) == set(range(len(synthetic_ar.KINDS))) - {1}
    bump = coast_bump(rivers)
    assert np.mean(bump[kind == synthetic_ar.ATMOSPHERIC_RIVER] > 5) > 0.9  # kg/m^2
    # Offshore plumes end short of the coast; plain backgrounds have no moist spot.
    for decoy in ("offshore_plume", "none"):
        assert np.mean(bump[kind == synthetic_ar.KINDS.index(decoy)] > 5) < 0.05, decoy
    # A river's anchor is its landfall point: on the coast of its row.
    river = kind == synthetic_ar.ATMOSPHERIC_RIVER
    rows = np.rint(rivers.anchor[river, 0]).astype(int)
    coast = np.argmax(rivers.x[river, rows, :, 1] >= 0.5, axis=1)  # first land column
    assert np.all(np.abs(rivers.anchor[river, 1] - coast) <= 1)


def test_harder_rivers_stand_out_less() -> None:
    def separation(difficulty: float) -> float:
        b = generate_ar(120, seed=5, difficulty=difficulty)
        return float(np.median(coast_bump(b)[b.y == 1]))

    levels = [separation(d) for d in (0.0, 0.5, 1.0)]
    assert levels[0] > levels[1] > levels[2] > 0, levels


def front_distance(batch: WFBatch) -> np.ndarray:
    """Signed distance [n, 27, 60] of every grid point from the main system's line,
    positive on the warm side (the formula of ``WFBatch``)."""
    r = np.arange(27, dtype=np.float32)[None, :, None] - batch.anchor[:, 0, None, None]
    c = np.arange(60, dtype=np.float32)[None, None, :] - batch.anchor[:, 1, None, None]
    cos, sin = np.cos(batch.angle)[:, None, None], np.sin(batch.angle)[:, None, None]
    along = c * cos + r * sin
    return c * sin - r * cos - batch.curvature[:, None, None] * along**2


def mean_between(field: np.ndarray, u: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per sample: the mean of ``field`` where ``low <= u <= high``."""
    inside = (u >= low) & (u <= high)
    return (field * inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)), 1)


def test_fronts_are_sharp_temperature_steps_with_a_rain_band_and_a_trough() -> None:
    b = generate_wf(1200, seed=8, difficulty=0.0)
    temp, rain, psl = (b.x[..., c] for c in range(3))
    assert synthetic_wf.CHANNELS == ("TREFHT", "PRECT", "PSL")
    assert temp.min() > 250 and temp.max() < 315 and rain.min() == 0  # K, mm/day
    assert psl.min() > 97_000 and psl.max() < 106_000  # Pa
    u = front_distance(b)
    contrast = mean_between(temp, u, 1, 3) - mean_between(temp, u, -3, -1)  # warm - cold
    band = mean_between(rain, u, -4, 0) - mean_between(rain, u, 4, 99)
    trough = (
        mean_between(psl, u, -1, 1)
        - (mean_between(psl, u, -6, -4) + mean_between(psl, u, 4, 6)) / 2
    )
    front = b.kind == synthetic_wf.FRONT
    assert np.all(b.kind[b.y == 1] == synthetic_wf.FRONT)
    assert np.mean(contrast[front] > 4) > 0.97  # K within 2 px: sharp
    assert np.mean(band[front] > 3) > 0.95  # rain on the cold side of the line
    assert np.mean(trough[front] < 0) > 0.9
    # Each decoy lacks part of it: a rain band has no step, the others no rain band, a
    # baroclinic zone spreads its contrast over many pixels.
    kind = {name: b.kind == i for i, name in enumerate(synthetic_wf.KINDS)}
    assert np.median(contrast[kind["rain_band"]]) < 1.5
    assert np.median(band[kind["rain_band"]]) > 3
    for decoy in ("baroclinic_zone", "dry_boundary", "none"):
        assert np.mean(band[kind[decoy]] > 3) < 0.02, decoy
    assert np.median(contrast[kind["baroclinic_zone"]]) < 0.4 * np.median(contrast[front])


def test_harder_fronts_are_harder_to_tell_from_decoys() -> None:
    def separation(difficulty: float) -> float:
        b = generate_wf(800, seed=1, difficulty=difficulty)
        gradient = np.hypot(*np.gradient(b.x[..., 0], axis=(1, 2))).max(axis=(1, 2))
        return roc_auc(gradient, b.y)

    levels = [separation(d) for d in (0.0, 0.5, 1.0)]
    assert levels[0] > levels[1] > levels[2] > 0.6, levels


# --- every task through the benchmark --------------------------------------------------


@pytest.mark.parametrize("task", ["ar", "wf"])
def test_each_task_loads_its_shape_and_channels(task: str) -> None:
    data = WeatherBenchmark({"task": task, **TINY[task]}).load_data(seed=0)
    _, channels, shape = TASKS[task]
    assert data.x_train.shape == (TINY[task]["n_train"], *shape) and data.channels == channels
    assert data.x_val.shape[1:] == shape and data.x_val.dtype == np.float32
    assert np.allclose(data.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-3)


@pytest.mark.parametrize(
    ("task", "conv1", "pool1", "fc"),
    [("ar", (148, 224), (49, 74), 200), ("wf", (27, 60), (13, 30), 400)],
)
def test_each_task_has_its_seed_convnet(
    task: str, conv1: tuple[int, int], pool1: tuple[int, int], fc: int
) -> None:
    model = WeatherBenchmark({"task": task}).build_model({}, seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"][:2] == conv1 and shapes["pool1"][:2] == pool1
    assert shapes["fc"] == (fc,) and shapes["out"] == (2,)
    kernel = 12 if task == "ar" else 5
    assert model.get_layer("conv1").kernel.shape[:2] == (kernel, kernel)


@pytest.mark.parametrize("task", ["ar", "wf"])
def test_a_tiny_convnet_trains_on_each_task(task: str) -> None:
    bench = WeatherBenchmark({"task": task, **TINY[task]})
    data = bench.load_data(seed=0)
    model = bench.build_model(TINY_CNN, seed=0)
    epochs, report = recorder()
    metrics = bench.fit(model, data, TINY_CNN, 1, report)
    assert epochs == [0] and set(metrics) == set(WeatherBenchmark.metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    probs = bench.predict(model, data.x_test)
    assert probs.shape == (TINY[task]["n_test"], 2)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_inference_batches_stay_small_enough_for_ar_patches() -> None:
    # 1,024 AR patches per batch made TF abort (std::bad_alloc) in the 12x12 convolutions.
    assert predict_batch((2000, 148, 224, 2)) == 253
    assert predict_batch((2000, 32, 32, 8)) == predict_batch((5, 27, 60, 3)) == 1024


@pytest.mark.parametrize("task", ["tc", "ar", "wf"])
def test_save_data_round_trips_every_task(task: str, tmp_path: Path) -> None:
    bench = WeatherBenchmark({"task": task, **TINY[task]})
    data = bench.load_data(seed=0)
    path = tmp_path / f"{task}.npz"
    bench.save_data(data, path)
    with np.load(path) as f:
        _, _, shape = TASKS[task]
        assert f["x_train"].shape == (TINY[task]["n_train"], *shape)
    back = WeatherBenchmark({"task": task, "data_path": str(path)}).load_data(seed=1)
    for split in ("train", "val", "test"):
        assert np.array_equal(getattr(back, f"y_{split}"), getattr(data, f"y_{split}"))
        assert np.allclose(getattr(back, f"x_{split}"), getattr(data, f"x_{split}"), atol=1e-4)
    assert np.allclose(back.mean, data.mean, rtol=1e-5) and back.channels == data.channels
    # A file of another task's shape is refused, naming the expected shape.
    other = "wf" if task != "wf" else "ar"
    with pytest.raises(ValueError, match=r"expected \(n, "):
        WeatherBenchmark({"task": other, "data_path": str(path)}).load_data(seed=0)


def test_ar_and_wf_convnets_train_on_the_jax_backend() -> None:
    code = f"""
import json, keras
from benchmarks_sci.weather import WeatherBenchmark
assert keras.backend.backend() == "jax"
out = {{}}
for task, sizes in {json.dumps({t: TINY[t] for t in ("ar", "wf")})}.items():
    bench = WeatherBenchmark({{"task": task, **sizes}})
    data = bench.load_data(seed=0)
    model = bench.build_model({TINY_CNN!r}, seed=0)
    out[task] = bench.fit(model, data, {TINY_CNN!r}, 1, lambda e, m: False)
print(json.dumps(out))
"""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    for task in ("ar", "wf"):
        assert set(metrics[task]) == set(WeatherBenchmark.metrics)
        assert 0.0 <= metrics[task]["val_accuracy"] <= 1.0
