"""The modules the science benchmarks share: hyper-parameter tables, data files, splits,
difficulty knobs, seeded parallel generation, the Keras optimizer and fit loop."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.datafiles import DataPathOption, read_arrays, write_arrays
from benchmarks_sci.difficulty import knobs_at
from benchmarks_sci.hyperparams import Choice, Int, ParamTable, Real
from benchmarks_sci.parallel import child, run_chunks, seed_sequence
from benchmarks_sci.splits import SPLITS, generate_splits
from supervisor.benchmarks import OptionError

ROOT = Path(__file__).resolve().parents[2]
TABLE = ParamTable(
    "the test model",
    {
        "units": Int(1, 100),
        "layers": Int(0),
        "dropout": Real(0.0, 1.0, high_open=True),
        "learning_rate": Real(0.0, 10.0, low_open=True),
        "gamma": Real(0.0, float("inf"), low_open=True, high_open=True),
        "optimizer": Choice(("adam", "sgd")),
    },
)


# --- hyper-parameters ------------------------------------------------------------------


def test_a_misspelled_hyper_parameter_gets_a_did_you_mean() -> None:
    with pytest.raises(ValueError) as info:
        TABLE.resolve({"learnig_rate": 0.1})
    assert str(info.value) == (
        "unknown hyper-parameter 'learnig_rate' for the test model (did you mean "
        "'learning_rate'?); known: units, layers, dropout, learning_rate, gamma, optimizer"
    )
    with pytest.raises(ValueError, match=r"'zzz' for the test model; known: units"):
        TABLE.resolve({"zzz": 1})


def test_known_names_and_owner_can_be_narrowed() -> None:
    with pytest.raises(ValueError, match=r"'dropout' for method 'x'; known: units, gamma$"):
        TABLE.resolve({"dropout": 0.1}, known=["units", "gamma"], owner="method 'x'")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"units": 0}, r"'units' must be an integer in \[1, 100\], got 0"),
        ({"units": 101}, r"'units' must be an integer in \[1, 100\], got 101"),
        ({"units": 2.5}, r"'units' must be an integer in \[1, 100\], got 2.5"),
        ({"layers": -1}, r"'layers' must be an integer >= 0, got -1"),
        ({"units": True}, r"'units' must be a number, got True"),
        ({"dropout": "0.1"}, r"'dropout' must be a number, got '0.1'"),
        ({"dropout": 1.0}, r"'dropout' must be in \[0.0, 1.0\), got 1.0"),
        ({"dropout": float("nan")}, r"'dropout' must be in \[0.0, 1.0\), got nan"),
        ({"learning_rate": 0}, r"'learning_rate' must be in \(0.0, 10.0\], got 0"),
        ({"gamma": float("inf")}, r"'gamma' must be a positive number, got inf"),
        ({"gamma": 0.0}, r"'gamma' must be a positive number, got 0.0"),
        ({"optimizer": "adamw"}, r"'optimizer' must be one of adam, sgd; got 'adamw' \(did "),
        ({"optimizer": 3}, r"'optimizer' must be one of adam, sgd; got 3$"),
    ],
)
def test_bad_values_are_errors_naming_parameter_and_range(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TABLE.resolve(params)


def test_values_are_normalised_and_interval_ends_respected() -> None:
    values = TABLE.resolve(
        {"units": 8.0, "layers": np.int64(0), "dropout": 0, "learning_rate": 10, "gamma": 1e9}
    )
    assert values == {"units": 8, "layers": 0, "dropout": 0.0, "learning_rate": 10.0, "gamma": 1e9}
    assert type(values["units"]) is int and type(values["dropout"]) is float
    assert TABLE.resolve({}) == {}  # defaults are the caller's


def test_every_benchmark_table_matches_its_hyper_parameters() -> None:
    from benchmarks_sci.cosmogan import model as cosmogan
    from benchmarks_sci.nanopore import model as nanopore
    from benchmarks_sci.speech import model as speech
    from benchmarks_sci.weather import model as weather

    for module in (cosmogan, nanopore, speech, weather):
        names = tuple(f.name for f in dataclasses.fields(module.HyperParams))
        assert module.PARAMS.names == names == module.PARAM_NAMES, module.__name__
        module.resolve_params({})  # every default is valid


@pytest.mark.parametrize(
    ("bench", "params", "message"),
    [
        (
            "speech",
            "  unitz: {type: int, low: 8, high: 64}",
            "params.unitz: unknown hyper-parameter",
        ),
        ("cosmogan", "  g_filters: [8, 0]", "params.g_filters: hyper-parameter 'g_filters'"),
        ("nanopore", "  dropout: {type: float, low: 0.0, high: 1.0}", "params.dropout"),
        ("weather", "  method: [cnn, svn]", "(did you mean 'svm'?)"),
        ("weather", "  C: {type: float, low: 0.0, high: 1.0}", "must be a positive number"),
    ],
)
def test_hyper_parameters_a_model_refuses_are_refused_before_anything_runs(
    bench: str, params: str, message: str
) -> None:
    from supervisor.config import space
    from supervisor.errors import SpaceError

    text = (
        f"benchmark: {bench}\nparams:\n{params}\nfixed: {{batch_size: 8}}\nbudget: {{trials: 2}}\n"
    )
    # Was a campaign whose every trial failed (exit 0 under 5 trials, fail fast's count).
    with pytest.raises(SpaceError, match=r"^s\.yaml:3:3: ") as caught:
        space.loads(text, "s.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(
        SpaceError, match=r"^s\.yaml:4:9: fixed\.batch_size: .* integer .*, got 0$"
    ):
        space.loads(
            text.replace("{batch_size: 8}", "{batch_size: 0}").replace(params, "  x: [1]"),
            "s.yaml",
        )


# --- data files ------------------------------------------------------------------------

ARRAYS = {"x": np.arange(6.0).reshape(2, 3), "y": np.array([0, 1]), "rate": np.array(200)}


@pytest.mark.parametrize("name", ["d.npz", "d.h5", "d.HDF5"])
def test_written_arrays_read_back(tmp_path: Path, name: str) -> None:
    if name != "d.npz":
        pytest.importorskip("h5py")
    path = tmp_path / name
    write_arrays(path, ARRAYS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no second ".npz"
    back = read_arrays(path, ("x", "y", "rate", "extra"), "test", optional=("extra",))
    assert set(back) == {"x", "y", "rate"}
    for key, value in ARRAYS.items():
        assert np.array_equal(back[key], value) and back[key].dtype == value.dtype


@pytest.mark.parametrize("name", ["d.npz", "d.h5"])
def test_missing_arrays_are_all_named(tmp_path: Path, name: str) -> None:
    if name.endswith(".h5"):
        pytest.importorskip("h5py")
    path = tmp_path / name
    write_arrays(path, {"x": ARRAYS["x"]})
    with pytest.raises(ValueError, match=r"d\.(npz|h5): missing array 'y', 'z'; expected x, y, z"):
        read_arrays(path, ("x", "y", "z", "w"), "test", optional=("w",))
    with pytest.raises(ValueError, match=r"missing array 'y'; expected x and y \[n\]"):
        read_arrays(path, ("x", "y"), "test", expected="x and y [n]")


def test_missing_file_suffix_and_h5py_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match=r"weather data file not found: .*nowhere\.npz"):
        read_arrays(tmp_path / "nowhere.npz", ("x",), "weather")
    (tmp_path / "d.csv").write_text("")
    with pytest.raises(ValueError, match=r"d\.csv: expected a \.npz/\.h5/\.hdf5 file$"):
        read_arrays(tmp_path / "d.csv", ("x",), "weather")
    with pytest.raises(ValueError, match=r"expected a \.npz/\.h5/\.hdf5 file name"):
        write_arrays(tmp_path / "e.csv", ARRAYS)
    (tmp_path / "d.h5").write_bytes(b"")  # exists, so that the missing module is what fails
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(ImportError, match=r"d\.h5 is HDF5, which needs h5py"):
        read_arrays(tmp_path / "d.h5", ("x",), "weather")
    with pytest.raises(ImportError, match="needs h5py"):
        write_arrays(tmp_path / "e.h5", ARRAYS)


def test_data_path_option_refuses_unknown_suffixes() -> None:
    option = DataPathOption("", "a file")
    assert option.check("data_path", "") == ""
    assert option.check("data_path", "/data/Maps.H5") == "/data/Maps.H5"
    with pytest.raises(OptionError) as info:
        option.check("data_path", "maps.csv")
    assert info.value.key == "data_path"
    assert info.value.message == "expected a .npz/.h5/.hdf5 file, got 'maps.csv'"
    with pytest.raises(OptionError, match="expected str"):
        option.check("data_path", 3)


# --- splits, difficulty, parallel generation -------------------------------------------


def test_splits_draw_from_independent_streams() -> None:
    def draw(n: int, stream: np.random.SeedSequence) -> np.ndarray:
        return np.random.default_rng(stream).random(n)

    small = generate_splits(7, {"n_train": 3, "n_val": 2, "n_test": 2}, draw)
    large = generate_splits(7, {"n_train": 9, "n_val": 2, "n_test": 2}, draw)
    assert tuple(small) == SPLITS and [len(v) for v in small.values()] == [3, 2, 2]
    assert np.array_equal(small["val"], large["val"])  # n_train changes nothing else
    assert np.array_equal(small["test"], large["test"])
    assert not np.array_equal(small["val"], small["test"])


def test_knobs_interpolate_between_levels() -> None:
    levels = {"difficulty": (0.0, 0.5, 1.0), "noise": (1.0, 2.0, 4.0), "p": (0.0, 0.5, 0.5)}
    assert knobs_at(levels, 0.5) == {"noise": 2.0, "p": 0.5}
    assert knobs_at(levels, 0.75) == {"noise": 3.0, "p": 0.5}
    assert knobs_at(levels, 0.0) == {"noise": 1.0, "p": 0.0}
    with pytest.raises(ValueError, match=r"difficulty must be in \[0, 1\], got 1.5"):
        knobs_at(levels, 1.5)


def test_chunked_generation_has_the_same_bits_on_any_number_of_threads() -> None:
    root = seed_sequence(11)

    def generate(threads: int) -> np.ndarray:
        out = np.empty(1000)

        def work(i: int, sl: slice) -> None:
            out[sl] = np.random.default_rng(child(root, i)).random(sl.stop - sl.start)

        run_chunks(out.size, 64, work, threads)
        return out

    assert np.array_equal(generate(1), generate(3))
    # ``child`` does not advance the root, unlike ``spawn``.
    assert child(root, 2).spawn_key == (2,) and root.n_children_spawned == 0
    assert seed_sequence(root) is root


def test_shared_modules_import_without_keras() -> None:
    code = (
        "import sys\n"
        "import benchmarks_sci.datafiles, benchmarks_sci.difficulty, benchmarks_sci.hyperparams\n"
        "import benchmarks_sci.keras_fit, benchmarks_sci.optimizers, benchmarks_sci.parallel\n"
        "import benchmarks_sci.splits\n"
        "bad = {'keras', 'tensorflow', 'jax', 'h5py'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- Keras ------------------------------------------------------------------------------


def test_optimizers_are_built_by_name() -> None:
    pytest.importorskip("keras")
    from benchmarks_sci.optimizers import build_optimizer

    sgd = build_optimizer("sgd", 0.1, momentum=0.9)
    assert type(sgd).__name__ == "SGD" and float(sgd.momentum) == pytest.approx(0.9)
    assert type(build_optimizer("rmsprop", 0.1, 0.5)).__name__ == "RMSprop"
    adam = build_optimizer("adam", 0.01)
    assert type(adam).__name__ == "Adam"
    assert float(adam.learning_rate) == pytest.approx(0.01)


def _regression(learning_rate: float) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    return model


def test_fit_reporting_reports_each_epoch_and_stops_when_asked() -> None:
    pytest.importorskip("keras")
    from benchmarks_sci.keras_fit import fit_reporting

    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = x @ np.array([1.0, -2.0], np.float32)
    model, reports, rates = _regression(0.05), [], []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reports.append((epoch, metrics))
        rates.append(float(model.optimizer.learning_rate))
        return epoch == 2  # the supervisor prunes after the third epoch

    def validate(m: Any, diverged: bool) -> dict[str, float]:
        assert m is model and not diverged
        return {"mse": float(np.mean((m.predict(x, verbose=0)[:, 0] - y) ** 2)), "extra": 1.0}

    outcome = fit_reporting(
        model,
        x,
        y,
        batch_size=8,
        epochs=10,
        report=report,
        validate=validate,
        val_reported=("mse",),
        learning_rate=lambda epoch: 0.05 / (epoch + 1),
    )
    assert [epoch for epoch, _ in reports] == [0, 1, 2]
    assert [list(m) for _, m in reports] == [["loss", "val_mse"]] * 3
    assert reports[-1][1]["val_mse"] < reports[0][1]["val_mse"]  # it trained
    assert rates == pytest.approx([0.05, 0.025, 0.05 / 3])
    assert outcome.val["mse"] == reports[-1][1]["val_mse"] and not outcome.diverged


def test_fit_reporting_stops_a_diverged_trial_and_scores_untrained_models() -> None:
    pytest.importorskip("keras")
    from benchmarks_sci.keras_fit import fit_reporting

    x = np.full((64, 2), 1e3, np.float32)
    y = np.full(64, 1e3, np.float32)
    model, epochs, seen = _regression(1e6), [], []  # explodes within a few batches

    def validate(m: Any, diverged: bool) -> dict[str, float]:
        seen.append(diverged)
        return {"score": float("nan") if diverged else 0.0}

    reported: list[dict[str, float]] = []
    outcome = fit_reporting(
        model,
        x,
        y,
        batch_size=4,
        epochs=5,
        report=lambda epoch, m: bool(epochs.append(epoch) or reported.append(m)),
        validate=validate,
        val_reported=("score",),
    )
    assert outcome.diverged and epochs == [0] and seen == [True]
    assert np.isnan(outcome.val["score"])
    # Its first steps were finite: the configuration diverged, not the data.
    assert reported[0]["diverged_after_steps"] == outcome.finite_steps >= 1

    poisoned = x.copy()
    poisoned[:, 0] = np.nan  # NaN inputs: non-finite from the first step
    broken: list[dict[str, float]] = []
    nan_inputs = fit_reporting(
        _regression(0.1),
        poisoned,
        y,
        batch_size=4,
        epochs=5,
        report=lambda epoch, m: bool(broken.append(m)),
        validate=validate,
        val_reported=("score",),
    )
    assert nan_inputs.diverged and broken[0]["diverged_after_steps"] == 0

    untrained = fit_reporting(
        _regression(0.1),
        x,
        y,
        batch_size=4,
        epochs=0,
        report=lambda epoch, m: pytest.fail("no epoch, no report"),
        validate=validate,
        val_reported=("score",),
    )
    assert untrained.val == {"score": 0.0} and not untrained.diverged
