"""The speech benchmark: synthetic vSMC high-gamma, the feed-forward decoder, data files,
and the articulatory structure that clustering its confusions recovers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks_sci.speech import SpeechBenchmark, hierarchy, phonetics, synthetic
from benchmarks_sci.speech.benchmark import (
    SpeechData,
    confusion_matrix,
    fold_split,
    scores,
    stratified_folds,
)
from benchmarks_sci.speech.model import hidden_units, resolve_params
from benchmarks_sci.speech.synthetic import bin_average, generate, templates
from supervisor.benchmarks import OptionError

ROOT = Path(__file__).resolve().parents[2]
TINY = {"trials_per_class": 6, "n_electrodes": 16, "sample_rate": 25}
FAST = {"units": 32, "batch_size": 32}


@pytest.fixture(scope="module")
def tiny() -> tuple[SpeechBenchmark, SpeechData]:
    bench = SpeechBenchmark(TINY)
    return bench, bench.load_data(seed=0)


def consonant_templates(seed: int) -> np.ndarray:
    """Noise-free consonant patterns [19, E * T]: mean over vowels, minus the mean over
    consonants (what a decoder sees after mean-centring)."""
    t = templates(seed)
    cons = t.reshape(phonetics.N_CONSONANTS, phonetics.N_VOWELS, -1).mean(axis=1)
    return cons - cons.mean(axis=0)


def nearest_centroid_confusion(seed: int, difficulty: float) -> np.ndarray:
    """Validation confusions of a nearest-class-mean decoder trained on generated data
    (12 training and 4 validation trials of every syllable; each session centred)."""
    per_class = 16
    rec = generate(per_class, seed, difficulty, n_electrodes=48, sample_rate=50)
    x = rec.x.reshape(len(rec.x), -1)
    for s in np.unique(rec.session):
        x[rec.session == s] -= x[rec.session == s].mean(axis=0)
    rank = np.empty(len(x), dtype=np.int64)
    rank[np.argsort(rec.y, kind="stable")] = np.arange(len(x)) % per_class
    train, val = rank >= 4, rank < 4
    means = np.stack([x[train & (rec.y == c)].mean(axis=0) for c in range(57)])
    d2 = (x[val] ** 2).sum(1)[:, None] - 2 * x[val] @ means.T + (means**2).sum(1)
    return confusion_matrix(rec.y[val], d2.argmin(axis=1))


# --- phonetics -------------------------------------------------------------------------


def test_the_syllable_set_is_19_consonants_by_3_vowels() -> None:
    assert len(phonetics.CV_NAMES) == len(set(phonetics.CV_NAMES)) == 57
    assert phonetics.CV_NAMES[:3] == ("ba", "bi", "bu")
    assert phonetics.class_index("sh", "u") == phonetics.CV_NAMES.index("shu")
    k = phonetics.class_index("th", "i")
    assert phonetics.CONSONANTS[phonetics.CONSONANT_OF_CLASS[k]].name == "th"
    assert phonetics.VOWELS[phonetics.VOWEL_OF_CLASS[k]].name == "i"
    # Every consonant has its own place-manner-voicing combination.
    combos = {(c.place, c.manner, c.voiced) for c in phonetics.CONSONANTS}
    assert len(combos) == 19
    names, table = phonetics.feature_table()
    assert table.shape == (57, len(names))
    assert (table[:, [n.startswith("major:") for n in names]].sum(axis=1) == 1).all()
    assert table[phonetics.class_index("p", "a"), names.index("voiced")] == 0
    assert table[phonetics.class_index("b", "u"), names.index("vowel:rounded")] == 1
    with pytest.raises(ValueError, match="unknown syllable 'xa'"):
        phonetics.class_index("x", "a")
    with pytest.raises(ValueError, match="unknown feature"):
        phonetics.consonant_groups("height")


# --- generator -------------------------------------------------------------------------


def test_generator_is_deterministic_under_a_seed_and_differs_across_seeds() -> None:
    first = generate(2, seed=3, n_electrodes=12, sample_rate=25)
    again = generate(2, seed=3, n_electrodes=12, sample_rate=25)
    other = generate(2, seed=4, n_electrodes=12, sample_rate=25)
    assert np.array_equal(first.x, again.x) and np.array_equal(first.y, again.y)
    assert not np.allclose(first.x, other.x) and not np.array_equal(first.y, other.y)
    seq = np.random.SeedSequence(3)  # a SeedSequence works and is not consumed
    assert np.array_equal(generate(2, seq, sample_rate=25).x, generate(2, seq, sample_rate=25).x)


def test_recording_has_balanced_classes_sessions_and_the_paper_window() -> None:
    rec = generate(4, seed=1, n_electrodes=20, n_sessions=3)
    assert rec.x.shape == (228, 20, 258) and rec.x.dtype == np.float32
    assert synthetic.TIMES[0] == -0.5 and synthetic.TIMES[-1] == pytest.approx(0.785)
    assert np.array_equal(np.bincount(rec.y), np.full(57, 4))
    assert np.array_equal(np.bincount(rec.session), [76, 76, 76])
    assert (np.diff(rec.session) >= 0).all()  # sessions are consecutive blocks
    assert np.isfinite(rec.x).all()
    with pytest.raises(ValueError, match="difficulty"):
        generate(1, seed=0, difficulty=1.5)
    with pytest.raises(ValueError, match="cannot resample 200 Hz to 30 Hz"):
        generate(1, seed=0, sample_rate=30)


def test_a_lower_sample_rate_is_the_binned_full_rate_recording() -> None:
    full = generate(3, seed=5, n_electrodes=24, sample_rate=200)
    low = generate(3, seed=5, n_electrodes=24, sample_rate=50)
    binned = bin_average(full.x, 4)
    assert low.x.shape == binned.shape == (171, 24, 64)
    assert np.array_equal(low.y, full.y)
    # The same trials: only the white noise is drawn anew, at the binned variance.
    resid = low.x - binned
    white = synthetic._Knobs.at(synthetic.DEFAULT_DIFFICULTY).white
    assert resid.std() == pytest.approx(np.sqrt(2) * white / 2, rel=0.25)
    lag1 = np.corrcoef(resid[..., 1:].ravel(), resid[..., :-1].ravel())[0, 1]
    assert abs(lag1) < 0.05  # white: none of the smooth signal or background differs


def test_templates_are_organised_by_articulatory_features() -> None:
    from scipy.cluster import hierarchy as scipy_hierarchy
    from scipy.spatial.distance import pdist, squareform

    major = phonetics.consonant_groups("major")
    same = (major[:, None] == major[None, :]) & ~np.eye(19, dtype=bool)
    for seed in (0, 1, 2):
        cons = consonant_templates(seed)
        d = squareform(pdist(cons, "correlation"))
        # Consonants sharing a place are closer than those that do not, and likewise
        # for the major articulator (labial / coronal / dorsal / laryngeal).
        place = phonetics.consonant_groups("place")
        same_place = (place[:, None] == place[None, :]) & ~np.eye(19, dtype=bool)
        assert d[same_place].mean() < 0.8 * d[place[:, None] != place[None, :]].mean()
        assert d[same].mean() < 0.8 * d[major[:, None] != major[None, :]].mean()
        # Most consonants' nearest neighbour shares their major articulator ...
        np.fill_diagonal(d, np.inf)
        assert np.mean(major[d.argmin(axis=1)] == major) >= 0.75
        # ... and the dendrogram joins same-articulator consonants lower.
        tree = scipy_hierarchy.linkage(pdist(cons, "correlation"), "average")
        coph = squareform(scipy_hierarchy.cophenet(tree))
        assert coph[same].mean() < 0.8 * coph[major[:, None] != major[None, :]].mean()
    # Stops, fricatives ... share timing: same-manner pairs of one place are closer.
    d = squareform(pdist(consonant_templates(0), "correlation"))
    names = [c.name for c in phonetics.CONSONANTS]
    assert d[names.index("t"), names.index("d")] < d[names.index("t"), names.index("s")]
    assert d[names.index("p"), names.index("b")] < d[names.index("p"), names.index("f")]


def test_higher_difficulty_separates_the_syllables_less() -> None:
    accuracy = [
        np.trace(c) / c.sum() for c in (nearest_centroid_confusion(0, d) for d in (0.0, 0.5, 1.0))
    ]
    assert accuracy[0] > accuracy[1] > accuracy[2] > 1 / 57, accuracy


def test_a_decoders_confusions_stay_within_the_articulator() -> None:
    confusion = hierarchy.consonant_confusion(nearest_centroid_confusion(0, 0.25))
    assert confusion.shape == (19, 19)
    major = phonetics.consonant_groups("major")
    same = major[:, None] == major[None, :]
    # Consonant errors go to a consonant of the same major articulator far more often
    # than errors spread at random would.
    errors = confusion * ~np.eye(19, dtype=bool)
    within = errors[same].sum() / errors.sum()
    chance = same[~np.eye(19, dtype=bool)].mean()
    assert within > 1.5 * chance, (within, chance)
    labels = hierarchy.clusters(confusion, 4)
    assert labels.shape == (19,) and set(labels) <= {0, 1, 2, 3}


def test_confusion_distances_group_block_structure() -> None:
    blocks = np.kron(np.eye(3), np.ones((2, 2))) * 5 + np.eye(6) * 10
    labels = hierarchy.clusters(blocks, 3)
    assert len(set(labels[[0, 1]])) == len(set(labels[[2, 3]])) == len(set(labels[[4, 5]])) == 1
    assert len(set(labels)) == 3
    d = hierarchy.confusion_distances(np.zeros((4, 4)))  # empty rows: uniform, distance 0
    assert np.allclose(d, 0)
    assert hierarchy.linkage(blocks).shape == (5, 4)
    with pytest.raises(ValueError, match="square matrix"):
        hierarchy.confusion_distances(np.ones((2, 3)))


# --- options and hyper-parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"difficulty": 1.5}, "difficulty"),
        ({"trials_per_class": 0}, "trials_per_class"),
        ({"n_electrodes": 2.5}, "n_electrodes"),
        ({"sample_rate": 30}, "sample_rate"),
        ({"fold": 10}, "fold"),
        ({"data_path": "trials.csv"}, "data_path"),
        ({"trials_per_klass": 3}, "trials_per_klass"),
    ],
)
def test_bad_options_raise_an_option_error_naming_the_key(
    options: dict[str, object], key: str
) -> None:
    with pytest.raises(OptionError) as info:
        SpeechBenchmark(options)
    assert info.value.key == key


def test_defaults_are_the_papers_setting_binned_to_50_hz() -> None:
    config = SpeechBenchmark().config
    assert config["n_electrodes"] == 86 and config["sample_rate"] == 50
    assert SpeechBenchmark().input_shape() == (86, 64)
    assert SpeechBenchmark({"sample_rate": 200}).input_shape() == (86, 258)
    hp = resolve_params({})
    assert (hp.n_layers, hp.activation, hp.optimizer) == (1, "relu", "adam")
    assert hp.dropout > 0 and hp.l2 > 0  # the paper's regularisers are on by default
    assert hidden_units(resolve_params({"n_layers": 3, "units": 100, "taper": 0.5})) == [
        100,
        50,
        25,
    ]


def test_unknown_hyper_parameter_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'n_layer'.*did you mean 'n_layers'"):
        SpeechBenchmark(TINY).build_model({"n_layer": 1}, seed=0)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"activation": "relux"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"input_dropout": -0.1}, "input_dropout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_layers": 1.5}, "n_layers"),
        ({"units": True}, "units"),
        ({"taper": 0}, "taper"),
        ({"lr_decay": 1.0}, "lr_decay"),
    ],
)
def test_bad_hyper_parameter_values_are_errors_naming_them(
    params: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        resolve_params(params)


def test_package_import_stays_free_of_keras_and_scipy() -> None:
    code = (
        "import sys, benchmarks_sci.speech as s; s.SpeechBenchmark.validate_options({}); "
        "bad = {'tensorflow', 'keras', 'jax', 'scipy', 'sklearn'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- data ------------------------------------------------------------------------------


def test_load_data_splits_80_10_10_by_class_and_centres(
    tiny: tuple[SpeechBenchmark, SpeechData],
) -> None:
    _, data = tiny
    n = {s: len(getattr(data, f"y_{s}")) for s in ("train", "val", "test")}
    assert sum(n.values()) == 342 and n["val"] == pytest.approx(34, abs=6)
    assert n["test"] == pytest.approx(34, abs=6)
    assert data.x_train.shape == (n["train"], 16 * 32) and data.x_train.dtype == np.float32
    assert (data.n_electrodes, data.n_time, data.sample_rate) == (16, 32, 25)
    assert len(np.unique(data.y_train)) == 57  # every syllable is trained on
    assert np.abs(data.x_train.mean(axis=0)).max() < 1e-4
    assert data.x_train.std() == pytest.approx(1.0, rel=1e-3)
    assert set(np.unique(data.session_train)) == {0, 1, 2, 3}
    raw = data.raw(data.x_val)  # model inputs <-> raw trials
    assert raw.shape == (n["val"], 16, 32)
    assert np.allclose(data.inputs(raw), data.x_val, atol=1e-5)


def test_folds_rotate_the_split() -> None:
    y = np.repeat(np.arange(57), 10)
    folds = stratified_folds(y, 10, np.random.SeedSequence(0))
    # Each class has exactly one trial in each fold.
    assert (np.bincount(y * 10 + folds, minlength=570) == 1).all()
    s0, s1 = fold_split(folds, 0), fold_split(folds, 1)
    assert np.array_equal(s0 == 2, folds == 0) and np.array_equal(s0 == 1, folds == 1)
    assert np.array_equal(s1 == 2, s0 == 1)  # fold 1 tests on fold 0's validation trials
    a = SpeechBenchmark({**TINY, "fold": 0}).load_data(seed=2)
    b = SpeechBenchmark({**TINY, "fold": 1}).load_data(seed=2)
    assert np.allclose(a.raw(a.x_val), b.raw(b.x_test), atol=1e-4)
    assert np.array_equal(a.y_val, b.y_test)


# --- training --------------------------------------------------------------------------


def recorder(
    stop_after: int | None = None, finite: bool = True
) -> tuple[list[int], Callable[..., bool]]:
    epochs: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "val_top5_accuracy"} <= set(
            metrics
        )
        assert all(isinstance(v, float) for v in metrics.values())
        assert not finite or all(np.isfinite(v) for v in metrics.values())
        epochs.append(epoch)
        return stop_after is not None and epoch >= stop_after

    return epochs, report


SGD_DECAY = {**FAST, "optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01, "lr_decay": 0.5}


@pytest.fixture(scope="module")
def trained(
    tiny: tuple[SpeechBenchmark, SpeechData],
) -> tuple[Any, dict[str, float], list[int]]:
    """A model fitted for 2 epochs (SGD, decaying learning rate), its metrics, the
    epochs reported."""
    bench, data = tiny
    model = bench.build_model(SGD_DECAY, seed=0)
    epochs, report = recorder()
    metrics = bench.fit(model, data, SGD_DECAY, 2, report)
    return model, metrics, epochs


def test_fit_reports_every_epoch_and_returns_the_metrics(
    tiny: tuple[SpeechBenchmark, SpeechData], trained: tuple[Any, dict[str, float], list[int]]
) -> None:
    bench, data = tiny
    model, metrics, epochs = trained
    assert epochs == [0, 1]
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)  # decayed once
    assert set(metrics) == set(SpeechBenchmark.metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["val_accuracy"] <= metrics["val_top5_accuracy"] <= 1.0
    probs = bench.predict(model, data.x_test)
    assert probs.shape == (len(data.y_test), 57) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    acc = float(np.mean(probs.argmax(axis=1) == data.y_test))
    assert acc == pytest.approx(metrics["test_accuracy"])


def test_fit_stops_when_report_says_so(tiny: tuple[SpeechBenchmark, SpeechData]) -> None:
    bench, data = tiny
    epochs, report = recorder(stop_after=0)
    metrics = bench.fit(bench.build_model(FAST, seed=0), data, FAST, 5, report)
    assert epochs == [0]
    assert np.isfinite(metrics["val_accuracy"])


def test_a_diverging_trial_stops_and_returns_nan(
    tiny: tuple[SpeechBenchmark, SpeechData],
) -> None:
    bench, data = tiny
    # Weight decay this strong for this learning rate makes every step overshoot: the
    # weights grow geometrically until the loss overflows.
    params = {**FAST, "optimizer": "sgd", "learning_rate": 10.0, "l2": 1.0, "batch_size": 4}
    epochs, report = recorder(finite=False)
    metrics = bench.fit(bench.build_model(params, seed=0), data, params, 3, report)
    assert epochs == [0]  # stopped within the first epoch
    assert all(np.isnan(v) for v in metrics.values())


def test_same_seed_gives_the_same_result(tiny: tuple[SpeechBenchmark, SpeechData]) -> None:
    bench, data = tiny

    def run(seed: int) -> dict[str, float]:
        return bench.fit(bench.build_model(FAST, seed), data, FAST, 1, lambda e, m: False)

    first = run(seed=9)
    assert run(seed=9) == first
    assert run(seed=10)["val_loss"] != first["val_loss"]


def test_the_network_follows_the_hyper_parameters() -> None:
    bench = SpeechBenchmark(TINY)
    model = bench.build_model({"n_layers": 3, "units": 40, "taper": 0.5}, seed=0)
    dense = [layer for layer in model.layers if layer.name.startswith(("hidden", "out"))]
    assert [layer.units for layer in dense] == [40, 20, 10, 57]
    assert model.input_shape == (None, 16 * 32)
    linear = bench.build_model({"n_layers": 0}, seed=0)  # the paper's linear baseline
    assert bench.count_params(linear) == 16 * 32 * 57 + 57


def test_artifacts_hold_the_validation_confusion_matrix(
    tiny: tuple[SpeechBenchmark, SpeechData], trained: tuple[Any, dict[str, float], list[int]]
) -> None:
    bench, data = tiny
    model, metrics, _ = trained
    arts = bench.artifacts(model, data, SGD_DECAY)
    cm = arts["confusion_matrix"]
    assert cm.shape == (57, 57) and cm.dtype == np.int64
    assert np.array_equal(cm.sum(axis=1), np.bincount(data.y_val, minlength=57))
    assert np.trace(cm) / cm.sum() == pytest.approx(metrics["val_accuracy"])
    assert tuple(arts["class_names"]) == phonetics.CV_NAMES


def test_scores_marginalise_consonants_and_vowels() -> None:
    probs = np.zeros((2, 57), np.float32)
    # Trial 0 is "bu": the syllable and the vowel are wrong, the consonant right (b: 0.4
    # against d and g: 0.3 each), and six syllables beat it (not in the top 5).
    for syllable, p in (("ba", 0.2), ("bi", 0.2), ("da", 0.15), ("di", 0.15), ("ga", 0.15)):
        probs[0, phonetics.CV_NAMES.index(syllable)] = p
    probs[0, phonetics.CV_NAMES.index("gi")] = 0.15
    probs[1, phonetics.CV_NAMES.index("ki")] = 1.0
    y = np.array([phonetics.CV_NAMES.index("bu"), phonetics.CV_NAMES.index("ki")])
    s = scores(probs, y)
    assert s["accuracy"] == 0.5 and s["consonant_accuracy"] == 1.0
    assert s["vowel_accuracy"] == 0.5 and s["top5_accuracy"] == 0.5
    assert s["loss"] == pytest.approx(-(np.log(1e-7) + np.log(1.0)) / 2, rel=1e-5)
    assert all(np.isnan(v) for v in scores(np.full((2, 57), np.nan, np.float32), y).values())


def test_top5_counts_ties_across_the_fifth_place_in_proportion() -> None:
    """SGD at learning rate 0.5 (in the space) collapsed the model to one class at 1.0,
    the other 56 underflowed to exactly 0: val_accuracy 0.0 and val_top5_accuracy 1.0,
    the best possible, since a tie across the 5th place counted a hit. A uniform output
    scored 100 % as well."""
    y = np.arange(4) * 7
    collapsed = np.zeros((4, 57), np.float32)
    collapsed[:, 50] = 1.0  # wrong for every trial
    assert scores(collapsed, y)["top5_accuracy"] == pytest.approx(4 / 56)
    uniform = np.full((4, 57), 1 / 57, np.float32)
    assert scores(uniform, y)["top5_accuracy"] == pytest.approx(5 / 57)
    # Ties inside the top 5 still count whole: the true class and two others at 0.3.
    inside = np.zeros((1, 57), np.float32)
    inside[0, [0, 1, 2]] = 0.3
    assert scores(inside, np.array([1]))["top5_accuracy"] == 1.0


# --- real data files -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["trials.npz", "trials.h5"])
def test_save_data_round_trips(
    tiny: tuple[SpeechBenchmark, SpeechData], tmp_path: Path, name: str
) -> None:
    if name.endswith(".h5"):
        pytest.importorskip("h5py")
    bench, data = tiny
    path = tmp_path / name
    bench.save_data(data, path)
    reader = SpeechBenchmark({**TINY, "data_path": str(path)})
    assert reader.input_shape() == (16, 32)  # read from the file's header
    back = reader.load_data(seed=7)
    for split in ("train", "val", "test"):
        assert np.allclose(getattr(back, f"x_{split}"), getattr(data, f"x_{split}"), atol=1e-4)
        assert np.array_equal(getattr(back, f"y_{split}"), getattr(data, f"y_{split}"))
        assert np.array_equal(getattr(back, f"session_{split}"), getattr(data, f"session_{split}"))
    assert back.sample_rate == 25
    with pytest.raises(ValueError, match=r"expected a \.npz/\.h5/\.hdf5 file name"):
        bench.save_data(data, tmp_path / "trials.csv")


def write_file(path: Path, **arrays: np.ndarray | None) -> None:
    rng = np.random.default_rng(0)
    base: dict[str, np.ndarray | None] = {
        "x": rng.normal(size=(120, 6, 40)).astype(np.float32),
        "y": np.arange(120) % 57,
    }
    base.update(arrays)
    present: dict[str, Any] = {k: v for k, v in base.items() if v is not None}
    np.savez(path, **present)


def test_a_file_without_split_is_dealt_into_folds_and_binned(tmp_path: Path) -> None:
    path = tmp_path / "rec.npz"
    write_file(path, sample_rate=np.array(100))
    bench = SpeechBenchmark({"data_path": str(path), "sample_rate": 25})
    assert bench.input_shape() == (6, 10)
    data = bench.load_data(seed=0)
    assert data.x_train.shape[1] == 60 and data.n_time == 10
    assert sum(len(getattr(data, f"y_{s}")) for s in ("train", "val", "test")) == 120
    assert (data.session_train == 0).all()
    raw = np.load(path)["x"]
    restored = np.concatenate(
        [data.raw(data.x_train), data.raw(data.x_val), data.raw(data.x_test)]
    )
    assert np.allclose(np.sort(restored.ravel()), np.sort(bin_average(raw, 4).ravel()), atol=1e-4)
    with pytest.raises(ValueError, match="recorded at 100 Hz"):
        SpeechBenchmark({"data_path": str(path), "sample_rate": 200}).load_data(seed=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x": None}, "missing array 'x'"),
        ({"x": np.zeros((120, 40), np.float32)}, r"x has shape \(120, 40\)"),
        ({"y": np.arange(120) % 58}, "labels 0-56"),
        ({"y": np.zeros(119, np.int64)}, "one label per trial"),
        ({"split": np.full(120, 3)}, "split must hold"),
        ({"session": np.zeros(5, np.int64)}, "session must be integers of shape"),
        ({"sample_rate": np.array(12.5)}, "sample_rate must be a positive whole number"),
        ({"x": np.full((120, 6, 40), np.nan, np.float32)}, "x contains NaN"),
        ({"sample_rate": np.array([200, 200])}, r"positive whole number of Hz, got \[200, 200\]"),
        # An empty validation or test split: NaN scores would fail every trial as diverged.
        ({"split": np.arange(120) % 2 * 2}, "bad.npz: no validation trials in its split array"),
        ({"split": np.arange(120) % 2}, "bad.npz: no test trials in its split array"),
        (
            {"x": np.zeros((5, 6, 40), np.float32), "y": np.arange(5)},
            "bad.npz: no validation trials in the 10 folds of its 5 trials",
        ),
    ],
)
def test_bad_files_are_clear_errors(
    tmp_path: Path, changes: dict[str, np.ndarray | None], message: str
) -> None:
    path = tmp_path / "bad.npz"
    write_file(path, **changes)
    with pytest.raises(ValueError, match=message):
        SpeechBenchmark({"data_path": str(path)}).load_data(seed=0)
