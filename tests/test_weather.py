"""The weather benchmark: synthetic cyclone patches, the seed's ConvNet, real-data files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmarks_sci.base import OptionError
from benchmarks_sci.weather import WeatherBenchmark
from benchmarks_sci.weather.benchmark import WeatherData, roc_auc
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
    root = Path(__file__).resolve().parent.parent
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

    first = run(seed=9)
    assert run(seed=9) == first
    assert run(seed=10)["val_loss"] != first["val_loss"]


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
    arrays: dict[str, np.ndarray] = {}
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


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        WeatherBenchmark({"data_path": str(tmp_path / "nowhere.npz")}).load_data(seed=0)


def test_hdf5_file_is_read_or_the_missing_h5py_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tc.h5"
    arrays = write_arrays(tmp_path / "tc.npz", np.random.default_rng(3))
    bench = WeatherBenchmark({"data_path": str(path)})
    try:
        import h5py
    except ImportError:
        path.write_bytes(b"")  # exists, so that the missing module is what fails
    else:
        with h5py.File(path, "w") as f:
            for name, value in arrays.items():
                f[name] = value
        assert np.array_equal(bench.load_data(seed=0).y_val, arrays["y_val"])
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(ImportError, match="needs h5py"):
        bench.load_data(seed=0)
