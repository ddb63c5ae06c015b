"""The nanopore benchmark: squiggle simulator, CTC decoding and identity, the basecaller."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.nanopore import NanoporeBenchmark
from benchmarks_sci.nanopore.benchmark import NanoporeData
from benchmarks_sci.nanopore.decode import (
    beam_search_decode,
    collapse,
    edit_distance,
    greedy_decode,
    identity,
    pad,
    to_string,
)
from benchmarks_sci.nanopore.model import resolve_params
from benchmarks_sci.nanopore.synthetic import (
    BLANK,
    MAD_TO_SD,
    MEAN_DWELL,
    PORE,
    SEGMENTS_PER_READ,
    K,
    Knobs,
    generate,
    make_dataset,
    pore_model,
)
from supervisor.benchmarks import OptionError

ROOT = Path(__file__).resolve().parents[2]
TINY = {"n_train": 64, "n_val": 32, "n_test": 32, "segment_length": 200}
# A small basecaller of the same structure: fast to trace and train on 2 cores.
SMALL = {
    "conv_blocks": 1,
    "conv_filters": 8,
    "stride": 2,
    "lstm_layers": 1,
    "lstm_units": 8,
    "batch_size": 16,
}
CONV = {**SMALL, "lstm_layers": 0}  # half the tracing time: for tests of fit's mechanics


@pytest.fixture(scope="module")
def tiny() -> tuple[NanoporeBenchmark, NanoporeData]:
    bench = NanoporeBenchmark(TINY)
    return bench, bench.load_data(seed=0)


def runs(kmer: np.ndarray) -> np.ndarray:
    """Lengths of the runs of equal k-mers along a sample sequence (inner runs only)."""
    change = np.flatnonzero(np.diff(kmer) != 0)
    return np.diff(change)


# --- simulator -------------------------------------------------------------------------


def test_generator_is_deterministic_under_a_seed_and_differs_across_seeds() -> None:
    x1, y1 = make_dataset(30, seed=3)
    x2, y2 = make_dataset(30, seed=3)
    x3, _ = make_dataset(30, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.allclose(x1, x3)
    seq = np.random.SeedSequence(3)  # a SeedSequence works too and is not consumed
    assert np.array_equal(make_dataset(30, seq)[0], make_dataset(30, seq)[0])


def test_segments_are_normalised_reads_with_padded_labels() -> None:
    batch = generate(2 * SEGMENTS_PER_READ + 3, seed=1, segment_length=300)
    assert batch.signal.shape == (23, 300) and batch.signal.dtype == np.float32
    assert batch.labels.dtype == np.int32 and batch.labels.shape[0] == 23
    assert np.isfinite(batch.signal).all()
    labels, lengths = batch.labels, batch.lengths
    assert set(np.unique(labels)) <= {-1, 0, 1, 2, 3}
    assert np.array_equal(labels >= 0, np.arange(labels.shape[1]) < lengths[:, None])
    assert lengths.max() == labels.shape[1]  # no all-padding column
    # Each read (consecutive segments) is median/MAD-normalised as a whole.
    read = batch.signal[:SEGMENTS_PER_READ].ravel()
    mad = np.median(np.abs(read - np.median(read))) * MAD_TO_SD
    assert abs(np.median(read)) < 1e-5 and mad == pytest.approx(1.0, abs=1e-4)
    assert np.array_equal(make_dataset(23, seed=1, segment_length=300)[1], labels)


def test_the_signal_follows_the_pore_model() -> None:
    clean = Knobs(noise=0, dwell_shape=3, jitter=0, drift=0, read_scale=0, read_shift=0)
    batch = generate(40, seed=2, knobs=clean)
    assert np.array_equal(batch.current, PORE.level[batch.kmer])  # a noiseless staircase
    # Labels are the central bases of the k-mers the segment's samples pass through.
    center = PORE.center_base()
    called = []
    for kmer in batch.kmer:
        steps = np.flatnonzero(np.diff(kmer) != 0) + 1
        called.append([int(center[k]) for k in kmer[np.r_[0, steps]]])
    assert np.mean(identity(pad(called), batch.labels)) > 0.95
    # With noise, the current scatters around the k-mer levels by about the noise.
    noisy = generate(40, seed=2, knobs=dataclasses.replace(clean, noise=2.0))
    residual = noisy.current - PORE.level[noisy.kmer]
    assert abs(residual.mean()) < 0.05 and np.std(residual) == pytest.approx(2.0, rel=0.1)


def test_the_pore_model_is_fixed_and_central_bases_matter_most() -> None:
    assert np.array_equal(pore_model().level, PORE.level)
    assert not np.array_equal(pore_model(seed=1).level, PORE.level)
    assert PORE.level.shape == (4**K,) and 50 < PORE.level.min() < PORE.level.max() < 130
    digits = (np.arange(4**K)[:, None] // 4 ** np.arange(K - 1, -1, -1)) % 4
    explained = [
        np.var([PORE.level[digits[:, p] == b].mean() for b in range(4)]) for p in range(K)
    ]
    assert explained[K // 2] == max(explained) and explained[0] < explained[1]
    assert np.array_equal(PORE.center_base(), digits[:, K // 2])


def test_dwell_times_have_the_mean_and_spread_difficulty_asks_for() -> None:
    spread = []
    for difficulty in (0.0, 0.5, 1.0):
        batch = generate(200, seed=3, knobs=Knobs.at(difficulty))
        dwell = runs(batch.kmer[:SEGMENTS_PER_READ].ravel())  # one whole read
        for start in range(SEGMENTS_PER_READ, 200, SEGMENTS_PER_READ):
            dwell = np.r_[dwell, runs(batch.kmer[start : start + SEGMENTS_PER_READ].ravel())]
        # Equal neighbouring k-mers (a 6-base homopolymer) merge two runs: rare.
        assert dwell.mean() == pytest.approx(MEAN_DWELL, rel=0.05)
        assert dwell.min() >= 1
        assert batch.lengths.mean() == pytest.approx(400 / MEAN_DWELL, rel=0.05)
        spread.append(dwell.std())
    assert spread[0] < spread[1] < spread[2]
    with pytest.raises(ValueError, match="difficulty"):
        Knobs.at(1.5)


# --- decoding and identity -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("ACGT", "ACGT", 0),
        ("", "", 0),
        ("", "ACG", 3),  # three insertions
        ("ACG", "", 3),  # three deletions
        ("ACGT", "AGT", 1),  # a deletion
        ("AGT", "ACGT", 1),  # an insertion
        ("ACGT", "ACCT", 1),  # a substitution
        ("ACGTACGT", "CGTACGTA", 2),  # shifted: deletion + insertion
        ("AAAA", "TTTT", 4),
        ("GATTACA", "GCATGCA", 3),
    ],
)
def test_edit_distance_known_answers(a: str, b: str, distance: int) -> None:
    assert edit_distance(pad([a]), pad([b])).tolist() == [distance]
    assert edit_distance(pad([b]), pad([a])).tolist() == [distance]


def test_edit_distance_matches_the_textbook_recurrence_on_a_batch() -> None:
    def levenshtein(a: list[int], b: list[int]) -> int:
        row = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, row[0] = row[:], i
            for j, y in enumerate(b, 1):
                row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y))
        return row[-1]

    rng = np.random.default_rng(0)
    a = [rng.integers(0, 4, rng.integers(0, 25)).tolist() for _ in range(300)]
    b = [rng.integers(0, 4, rng.integers(0, 25)).tolist() for _ in range(300)]
    expected = [levenshtein(x, y) for x, y in zip(a, b, strict=True)]
    assert edit_distance(pad(a), pad(b)).tolist() == expected
    with pytest.raises(ValueError, match="equal n"):
        edit_distance(pad(["A"]), pad(["A", "C"]))


def test_identity_known_answers() -> None:
    ref = pad(["ACGTACGTAC", "ACGTACGTAC", "ACGTACGTAC", "ACGTACGTAC", ""])
    reads = pad(["ACGTACGTAC", "", "ACGTTACGTAC", "AGTACGTC", "AC"])
    assert identity(reads, ref).tolist() == pytest.approx([1.0, 0.0, 0.9, 0.8, -1.0])


def test_greedy_decoding_merges_repeats_then_drops_blanks() -> None:
    b = BLANK
    paths = np.array(
        [
            [b, 0, 0, b, 0, 1, 1, b, b, 2, 3, 3],  # A A (blank between) C G T
            [b] * 12,  # nothing called
            [2] * 12,  # one long G
            [0, 1, 0, 1, b, b, b, 1, 1, 1, 3, 3],  # a blank splits C from C
        ]
    )
    reads = collapse(paths)
    assert [to_string(r) for r in reads] == ["AACGT", "", "G", "ACACCT"]
    assert reads.shape == (4, 6) and reads[1].tolist() == [-1] * 6
    probs = np.eye(5, dtype=np.float32)[paths] * 0.9 + 0.02  # peaked, not one-hot
    assert np.array_equal(greedy_decode(probs), reads)
    assert greedy_decode(np.full((2, 3, 5), 0.2)).shape == (2, 1)  # ties: first class, A


def test_beam_search_sums_paths_where_greedy_takes_the_best_one() -> None:
    # Each step: A 0.4, blank 0.6. Best path: blank blank (0.36) -> "". But "A" has
    # three paths (A A, A -, - A) worth 0.64 in all, which beam search finds.
    probs = np.array([[[0.4, 0, 0, 0, 0.6]] * 2], dtype=np.float32)
    assert greedy_decode(probs).tolist() == [[]]
    assert beam_search_decode(probs, beam_width=4).tolist() == [[0]]
    peaked = np.eye(5, dtype=np.float32)[[[b, 2, 2, b, 0, 3, b, b] for b in [BLANK]]] + 0.01
    assert np.array_equal(beam_search_decode(peaked, 8), greedy_decode(peaked))


# --- options and hyper-parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"difficulty": 1.5}, "difficulty"),
        ({"n_train": 0}, "n_train"),
        ({"segment_length": 8}, "segment_length"),
        ({"decoder": "viterbi"}, "decoder"),
        ({"beam_width": 0}, "beam_width"),
        ({"data_path": "reads.fast5"}, "data_path"),
        ({"n_trian": 100}, "n_trian"),
    ],
)
def test_bad_options_raise_an_option_error_naming_the_key(
    options: dict[str, object], key: str
) -> None:
    with pytest.raises(OptionError) as info:
        NanoporeBenchmark(options)
    assert info.value.key == key


def test_hyper_parameter_defaults_are_chirons() -> None:
    hp = resolve_params({})
    assert (hp.conv_blocks, hp.conv_filters, hp.kernel_size, hp.stride) == (3, 256, 3, 1)
    assert (hp.lstm_layers, hp.lstm_units) == (3, 100)
    assert (hp.optimizer, hp.learning_rate, hp.batch_size, hp.dropout) == ("adam", 1e-3, 200, 0)
    assert NanoporeBenchmark().config["segment_length"] == 400


def test_unknown_hyper_parameter_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'lstm_unit'.*did you mean 'lstm_units'"):
        NanoporeBenchmark(TINY).build_model({"lstm_unit": 64}, seed=0)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"dropout": 1.0}, "dropout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"conv_filters": 2.5}, "conv_filters"),
        ({"lstm_layers": -1}, "lstm_layers"),
        ({"stride": True}, "stride"),
        ({"stride": 2, "conv_blocks": 0}, "stride"),
    ],
)
def test_bad_hyper_parameter_values_are_errors_naming_them(
    params: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        resolve_params(params)


def test_package_import_stays_free_of_keras() -> None:
    code = (
        "import sys, benchmarks_sci.nanopore as n; n.NanoporeBenchmark.validate_options({}); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- training --------------------------------------------------------------------------


def test_load_data_draws_independent_splits(tiny: tuple[NanoporeBenchmark, NanoporeData]) -> None:
    _, data = tiny
    assert data.x_train.shape == (64, 200) and data.x_val.shape == (32, 200)
    assert data.y_test.shape[0] == 32 and data.segment_length == 200
    bigger = NanoporeBenchmark({**TINY, "n_train": 80}).load_data(seed=0)
    assert np.array_equal(bigger.x_val, data.x_val) and np.array_equal(bigger.y_val, data.y_val)
    assert not np.array_equal(data.x_train[:32], data.x_val)


def recorder(
    stop_after: int | None = None, finite: bool = True
) -> tuple[list[int], Callable[..., bool]]:
    epochs: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        # diverged_after_steps: in the epoch it diverged in
        assert set(metrics) - {"diverged_after_steps"} == {"loss", "val_loss", "val_identity"}
        assert all(isinstance(v, float) for v in metrics.values())
        assert not finite or all(np.isfinite(v) for v in metrics.values())
        epochs.append(epoch)
        return stop_after is not None and epoch >= stop_after

    return epochs, report


@dataclasses.dataclass
class Trained:
    bench: NanoporeBenchmark
    data: NanoporeData
    model: Any
    metrics: dict[str, float]
    epochs: list[int]


@pytest.fixture(scope="module")
def trained(tiny: tuple[NanoporeBenchmark, NanoporeData]) -> Trained:
    """The small basecaller after two epochs (traced once; later fits reuse the trace)."""
    bench, data = tiny
    model = bench.build_model(SMALL, seed=0)
    epochs, report = recorder()
    metrics = bench.fit(model, data, SMALL, 2, report)
    return Trained(bench, data, model, metrics, epochs)


def test_fit_reports_every_epoch_and_returns_the_metrics(trained: Trained) -> None:
    bench, data, model, metrics = trained.bench, trained.data, trained.model, trained.metrics
    assert trained.epochs == [0, 1]
    assert set(metrics) == set(NanoporeBenchmark.metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["val_identity"] <= 1.0 and metrics["val_loss"] > 0
    probs = bench.predict(model, data.x_test)
    assert probs.shape == (32, 100, 5) and probs.dtype == np.float32  # stride 2
    assert np.allclose(probs.sum(axis=-1), 1.0, atol=1e-5) and (probs >= 0).all()
    test_identity = np.mean(identity(greedy_decode(probs), data.y_test))
    assert test_identity == pytest.approx(metrics["test_identity"])
    assert bench.count_params(model) == model.count_params() > 0


def test_artifacts_hold_a_squiggle_its_reference_and_its_read(trained: Trained) -> None:
    bench, data, model = trained.bench, trained.data, trained.model
    art = bench.artifacts(model, data, SMALL)
    assert set(art) == {"signal", "reference", "decoded"}
    assert np.array_equal(art["signal"], data.x_val[0])
    assert art["reference"].tolist() == data.y_val[0][data.y_val[0] >= 0].tolist()
    read = greedy_decode(bench.predict(model, data.x_val[:1]))[0]
    assert art["decoded"].tolist() == read[read >= 0].tolist()


def test_fit_stops_when_report_says_so(trained: Trained) -> None:
    epochs, report = recorder(stop_after=0)
    metrics = trained.bench.fit(trained.model, trained.data, SMALL, 5, report)
    assert epochs == [0] and np.isfinite(metrics["val_identity"])


def test_beam_search_scoring_is_an_option(trained: Trained) -> None:
    beam = NanoporeBenchmark({**TINY, "decoder": "beam_search", "beam_width": 5})
    probs = beam.predict(trained.model, trained.data.x_val)
    assert np.array_equal(beam.decode(probs), beam_search_decode(probs, 5))
    metrics = beam.fit(trained.model, trained.data, SMALL, 0, lambda e, m: False)
    expected = np.mean(identity(beam_search_decode(probs, 5), trained.data.y_val))
    assert metrics["val_identity"] == pytest.approx(expected)


def test_a_diverging_trial_stops_and_returns_nan(
    tiny: tuple[NanoporeBenchmark, NanoporeData],
) -> None:
    bench, data = tiny
    params = {**CONV, "optimizer": "sgd", "learning_rate": 10.0, "momentum": 0.9}
    epochs, record = recorder(finite=False)
    reported: list[dict[str, float]] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(metrics)
        return record(epoch, metrics)

    metrics = bench.fit(bench.build_model(params, seed=0), data, params, 3, report)
    assert epochs == [0]  # stopped within the first epoch
    assert all(np.isnan(v) for v in metrics.values())
    # After finite steps: the learning rate diverged, not the data (fail fast goes on).
    assert reported[0]["diverged_after_steps"] >= 1


def test_same_seed_gives_the_same_result(tiny: tuple[NanoporeBenchmark, NanoporeData]) -> None:
    bench, data = tiny
    params = {**CONV, "dropout": 0.2}

    def run(seed: int) -> dict[str, float]:
        return bench.fit(bench.build_model(params, seed), data, params, 1, lambda e, m: False)

    assert run(seed=9) == run(seed=9)
    other = bench.build_model(params, seed=10).get_weights()
    same = bench.build_model(params, seed=9).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(same, other, strict=True))


def test_a_stride_too_large_for_the_labels_is_a_clear_error(
    tiny: tuple[NanoporeBenchmark, NanoporeData],
) -> None:
    bench, data = tiny
    params = {**SMALL, "stride": 16}  # 13 steps for ~22 bases
    with pytest.raises(ValueError, match="'stride' 16 leaves 13 time steps"):
        bench.fit(bench.build_model(params, seed=0), data, params, 1, lambda e, m: False)


def test_the_default_model_is_chirons_architecture() -> None:
    model = NanoporeBenchmark(TINY).build_model({}, seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert [name for name in shapes if name.endswith("_out")] == [
        "res1_out",
        "res2_out",
        "res3_out",
    ]
    assert shapes["res3_out"] == (None, 256)
    assert [shapes[f"bilstm{i}"] for i in (1, 2, 3)] == [(None, 200)] * 3
    assert shapes["logits"] == (None, 5)
    assert model.get_layer("res1_b").kernel.shape == (3, 256, 256)
    assert model.get_layer("bilstm1").forward_layer.units == 100


@pytest.fixture
def mixed_bfloat16() -> Iterator[None]:
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.usefixtures("mixed_bfloat16")
def test_lstms_stay_float32_under_a_bfloat16_policy() -> None:
    import keras

    # JAX's cuDNN LSTM rejects bfloat16; the model must keep its LSTMs in float32.
    model = NanoporeBenchmark(TINY).build_model({**SMALL, "lstm_layers": 2}, seed=0)
    assert model.get_layer("res1_a").compute_dtype == "bfloat16"  # convs stay mixed
    for name in ("bilstm1", "bilstm2"):
        wrapper = model.get_layer(name)
        for lstm in (wrapper, wrapper.forward_layer, wrapper.backward_layer):
            assert lstm.dtype_policy.name == "float32", lstm.name
    signal = np.random.default_rng(0).normal(size=(4, 200)).astype(np.float32)
    logits = keras.ops.convert_to_numpy(model(signal, training=False))  # eager: no tracing
    assert logits.dtype == np.float32 and logits.shape == (4, 100, 5)
    assert np.isfinite(logits).all()


# --- real data files -------------------------------------------------------------------


def test_save_data_round_trips(
    tmp_path: Path, tiny: tuple[NanoporeBenchmark, NanoporeData]
) -> None:
    bench, data = tiny
    path = tmp_path / "segments.npz"
    bench.save_data(data, path)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(
            f"{a}_{s}" for a in ("signal", "labels") for s in ("train", "val", "test")
        )
    loaded = NanoporeBenchmark({"data_path": str(path)}).load_data(seed=5)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(loaded, name), getattr(data, name)), name
        assert getattr(loaded, name).dtype == getattr(data, name).dtype


def write_arrays(path: Path, **changes: np.ndarray | None) -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray | None] = {}
    for split, n in (("train", 6), ("val", 4), ("test", 3)):
        arrays[f"signal_{split}"] = rng.normal(size=(n, 50)).astype(np.float32)
        arrays[f"labels_{split}"] = pad(["ACGT", "GGA", "", "TTTTT", "C", "AC"][:n])
    arrays.update(changes)
    kept: dict[str, Any] = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **kept)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels_val": None}, "missing array 'labels_val'"),
        ({"labels_test": pad(["ACGT", "A", "C"]) + 1}, "must hold bases 0..3"),
        ({"labels_test": np.array([[0, -1, 2]] * 3)}, "a base after -1 padding"),
        ({"labels_train": pad(["A"] * 5)}, "signal_train has 6 segments but labels_train 5"),
        ({"signal_val": np.full((4, 50), np.nan, np.float32)}, "signal_val contains NaN"),
        ({"signal_test": np.zeros((3, 60), np.float32)}, "signal_test has segments of 60"),
        ({"signal_train": np.zeros(6, np.float32)}, r"signal_train must be a numeric array"),
        ({"labels_val": np.zeros((4, 2), np.float32)}, "labels_val must be an integer array"),
        # Labels CTC cannot align with a 50-sample segment at any stride: 51 bases, or 30
        # bases with 29 repeats (each needs a blank between). 40 bases fit.
        ({"labels_val": pad(["A", "AC" * 25 + "G", "", ""])}, "labels_val row 1 needs 51 time"),
        ({"labels_test": pad(["AC" * 20, "A" * 30, ""])}, "labels_test row 1 needs 59 time"),
    ],
)
def test_bad_files_are_clear_errors(
    tmp_path: Path, changes: dict[str, np.ndarray | None], message: str
) -> None:
    path = tmp_path / "bad.npz"
    write_arrays(path, **changes)
    with pytest.raises(ValueError, match=message):
        NanoporeBenchmark({"data_path": str(path)}).load_data(seed=0)


def test_hdf5_file_is_read(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "reads.h5"
    write_arrays(tmp_path / "ref.npz")
    with np.load(tmp_path / "ref.npz") as f, h5py.File(path, "w") as h5:
        for name in f.files:
            h5[name] = f[name]
        data = NanoporeBenchmark({"data_path": str(path)}).load_data(seed=0)
        assert np.array_equal(data.y_train, f["labels_train"])
        assert np.array_equal(data.x_test, f["signal_test"])
