"""The speech benchmark: decode the spoken consonant-vowel syllable (57 classes) from
high-gamma ECoG over ventral sensorimotor cortex (Livezey, Bouchard & Chang 2019).

Data are synthetic by default (``synthetic.generate``: ``trials_per_class`` trials of
each syllable from ``n_electrodes`` electrodes). With ``data_path`` set, a recording is
read instead and ``trials_per_class``, ``n_electrodes``, ``n_sessions`` and
``difficulty`` are ignored.

Real-data file layout (``.npz``, or ``.h5``/``.hdf5`` with the same names as datasets at
the root; HDF5 needs h5py):

* ``x``: float array [n, electrodes, time], high-gamma amplitude of each trial, aligned
  to the consonant-vowel transition (the paper: -0.5 to 0.79 s, 258 samples at 200 Hz;
  any electrode count and window length work). Any units.
* ``y``: int labels [n], 0-56, numbered as in ``phonetics.CV_NAMES`` (class ``k`` is
  consonant ``k // 3`` with vowel ``k % 3``).
* ``sample_rate`` (optional): scalar, Hz of ``x``; 200 if absent. It must be an integer
  multiple of the option ``sample_rate``: ``x`` is averaged over bins to that rate (the
  last samples that do not fill a bin are dropped).
* ``session`` (optional): int [n], recording session (block) of each trial; 0 if absent.
* ``split`` (optional): int [n], 0 = train, 1 = validation, 2 = test. Without it the
  trials are dealt into 10 folds stratified by class (from the data seed), and the option
  ``fold`` picks the test fold (``fold``) and the validation fold (``fold + 1`` mod 10):
  80/10/10 splits rotating with ``fold`` like the paper's cross-validation. With it,
  ``fold`` is ignored.

Inputs: each trial flattened to electrodes x time (electrode-major), minus the
training split's mean of each feature, divided by one global scale (the standard
deviation of the centred training inputs; one scalar, so the spatio-temporal structure
is untouched). ``SpeechData.raw`` undoes it.

Metrics, scored by this module after every epoch on the validation split:
``val_loss`` is the cross-entropy without the L2 penalty; ``val_top5_accuracy`` counts a
trial right when its syllable is among the 5 most probable (a tie across the 5th place
counts in proportion, as if broken at random: a uniform output scores 5/57);
``val_consonant_accuracy`` and ``val_vowel_accuracy`` take the argmax of the
probabilities summed over the other part of the syllable. ``artifacts`` keeps the
validation confusion matrix (rows: true syllable, columns: predicted, counts) and the
class names for hierarchical clustering (``hierarchy``). A diverged trial (non-finite
loss) stops at once and returns NaN metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import benchmarks_sci.speech.synthetic as synthetic
from benchmarks_sci.datafiles import (
    DataPathOption,
    check_file,
    h5py_module,
    npz_shape,
    read_arrays,
    write_arrays,
)
from benchmarks_sci.hyperparams import TableChecked
from benchmarks_sci.keras_fit import fit_reporting
from benchmarks_sci.speech.phonetics import (
    CONSONANT_OF_CLASS,
    CV_NAMES,
    N_CLASSES,
    N_CONSONANTS,
    N_VOWELS,
    VOWEL_OF_CLASS,
)
from benchmarks_sci.splits import SPLITS
from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option

N_FOLDS = 10
SAMPLE_RATES = (200, 100, 50, 25)
TOP_K = 5
SCORES = ("loss", "accuracy", "top5_accuracy", "consonant_accuracy", "vowel_accuracy")
_PREDICT_BATCH = 1024  # inference only: larger batches are faster and change nothing


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class SpeechData:
    """Model inputs float32 [n, electrodes * time], labels int64 [n], sessions int64 [n]
    of every split, and what maps raw trials to inputs."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    session_train: np.ndarray
    session_val: np.ndarray
    session_test: np.ndarray
    n_electrodes: int
    n_time: int
    sample_rate: int
    mean: np.ndarray  # float32 [electrodes * time]: training mean of each feature
    scale: float  # standard deviation of the centred training inputs

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Raw trials [n, electrodes, time] at ``sample_rate`` -> model inputs (a copy)."""
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        return (flat - self.mean) / np.float32(self.scale)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Model inputs -> raw trials float32 [n, electrodes, time]."""
        flat = np.asarray(x, dtype=np.float32) * np.float32(self.scale) + self.mean
        return flat.reshape(len(x), self.n_electrodes, self.n_time)


class SpeechBenchmark(TableChecked, Benchmark):
    """57-way consonant-vowel syllable classification from vSMC high-gamma ECoG."""

    name = "speech"
    param_table = "benchmarks_sci.speech.model"  # the hyper-parameters a space file may give
    ensemble_kind = "classification"
    metrics: ClassVar[dict[str, Direction]] = {
        "val_accuracy": "maximize",
        "val_loss": "minimize",
        "val_top5_accuracy": "maximize",
        "val_consonant_accuracy": "maximize",
        "val_vowel_accuracy": "maximize",
        "test_accuracy": "maximize",
    }
    tiny_options: ClassVar[dict[str, Any]] = {
        "trials_per_class": 6,
        "n_electrodes": 16,
        "sample_rate": 25,
    }
    options: ClassVar[dict[str, Option]] = {
        "trials_per_class": Option(
            100, "synthetic trials of each of the 57 syllables", low=1, high=100_000
        ),
        "n_electrodes": Option(
            synthetic.N_ELECTRODES, "synthetic vSMC electrodes", low=1, high=4096
        ),
        "n_sessions": Option(
            4, "synthetic recording sessions (drifting gains, offsets)", low=1, high=1000
        ),
        "difficulty": Option(
            synthetic.DEFAULT_DIFFICULTY,
            "0: little noise and jitter; 1: much of both",
            low=0.0,
            high=1.0,
        ),
        "sample_rate": Option(
            50,  # high-gamma amplitude is smooth; 4x fewer inputs than 200 Hz, 4x faster
            "Hz of the model inputs (bins of the 200 Hz recording averaged): 200 is the paper's",
            choices=SAMPLE_RATES,
        ),
        "fold": Option(
            0,
            "test fold of 10 (validation: the next one); rotates the 80/10/10 split",
            low=0,
            high=N_FOLDS - 1,
        ),
        "data_path": DataPathOption(
            "", "an .npz/.h5 recording (see the module doc); empty: synthetic"
        ),
    }

    def input_shape(self) -> tuple[int, int]:
        """(electrodes, time samples) of one trial as the model sees it."""
        rate = self.config["sample_rate"]
        if self.config["data_path"]:
            path = Path(self.config["data_path"])
            (n_electrodes, n_time), file_rate = _file_shape(path)
            return n_electrodes, n_time // _factor(path, file_rate, rate)
        return self.config["n_electrodes"], synthetic.N_TIME // (synthetic.SAMPLE_RATE // rate)

    def load_data(self, seed: int) -> SpeechData:
        rate = self.config["sample_rate"]
        root = np.random.SeedSequence(seed)
        if self.config["data_path"]:
            rec = read_recording(Path(self.config["data_path"]), rate)
            x, y, session, split = rec["x"], rec["y"], rec["session"], rec.get("split")
        else:
            generated = synthetic.generate(
                self.config["trials_per_class"],
                np.random.SeedSequence(root.entropy, spawn_key=(0,)),
                self.config["difficulty"],
                self.config["n_electrodes"],
                self.config["n_sessions"],
                rate,
            )
            x, y, session, split = generated.x, generated.y, generated.session, None
        dealt = split is None  # into folds; a file's own split otherwise
        if split is None:
            folds = stratified_folds(
                y, N_FOLDS, np.random.SeedSequence(root.entropy, spawn_key=(1,))
            )
            split = fold_split(folds, self.config["fold"])
        if (empty := np.bincount(split, minlength=len(SPLITS)) == 0).any():
            # An empty validation or test split scores NaN: every trial would fail as if
            # it had diverged (synthetic data always fill the folds).
            name = ("training", "validation", "test")[empty.argmax()]
            why = f"the {N_FOLDS} folds of its {len(y)} trials" if dealt else "its split array"
            raise ValueError(f"{self.config['data_path']}: no {name} trials in {why}")
        return _standardised(x, y, session, split, rate)

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        from benchmarks_sci.speech.model import build_model

        n_electrodes, n_time = self.input_shape()
        return build_model(params, seed, n_inputs=n_electrodes * n_time, n_classes=N_CLASSES)

    def fit(
        self,
        model: Any,
        data: SpeechData,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        from benchmarks_sci.speech.model import resolve_params

        hp = resolve_params(params)

        def decayed(epoch: int) -> float:
            return hp.learning_rate * (1 - hp.lr_decay) ** epoch

        # Scored here rather than by Keras so that per-epoch and final val_loss are the
        # same quantity: the data loss without the L2 penalty.
        val = fit_reporting(
            model,
            data.x_train,
            data.y_train,
            batch_size=hp.batch_size,
            epochs=epochs,
            report=report,
            validate=lambda m, _: scores(self.predict(m, data.x_val), data.y_val),
            val_reported=SCORES,  # all: any val_* objective can be pruned on
            logged=("loss", "accuracy"),
            learning_rate=decayed if hp.lr_decay > 0 else None,
        ).val
        test = scores(self.predict(model, data.x_test), data.y_test)
        return {
            "val_accuracy": val["accuracy"],
            "val_loss": val["loss"],
            "val_top5_accuracy": val["top5_accuracy"],
            "val_consonant_accuracy": val["consonant_accuracy"],
            "val_vowel_accuracy": val["vowel_accuracy"],
            "test_accuracy": test["accuracy"],
        }

    def predict(self, model: Any, x: Any) -> np.ndarray:
        """Class probabilities float32 [n, 57] for model inputs (``SpeechData.x_*``)."""
        probs = model.predict(x, batch_size=_PREDICT_BATCH, verbose=0)
        return np.asarray(probs, dtype=np.float32)

    def artifacts(self, model: Any, data: SpeechData, params: Mapping[str, Any]) -> dict[str, Any]:
        """The validation confusion matrix int64 [57, 57] (rows: true syllable) and the
        class names, for the hierarchical clustering of ``hierarchy``."""
        predicted = self.predict(model, data.x_val).argmax(axis=1)
        return {
            "confusion_matrix": confusion_matrix(data.y_val, predicted),
            "class_names": np.array(CV_NAMES),
        }

    def save_data(self, data: SpeechData, path: Path) -> None:
        """All trials, raw (un-standardised), with their split, in the documented layout;
        ``.npz`` or, for an ``.h5``/``.hdf5`` path, HDF5 (needs h5py)."""
        arrays: dict[str, np.ndarray] = {
            "x": np.concatenate([data.raw(getattr(data, f"x_{s}")) for s in SPLITS]),
            "y": np.concatenate([getattr(data, f"y_{s}") for s in SPLITS]),
            "session": np.concatenate([getattr(data, f"session_{s}") for s in SPLITS]),
            "split": np.concatenate(
                [np.full(len(getattr(data, f"y_{s}")), i, np.int64) for i, s in enumerate(SPLITS)]
            ),
            "sample_rate": np.array(data.sample_rate, dtype=np.int64),
        }
        write_arrays(path, arrays)


def scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-entropy (Keras' clipping), accuracy, top-5, consonant and vowel accuracy;
    all NaN if the model diverged (argmax of NaN would score like chance)."""
    if not np.isfinite(probs).all() or y.size == 0:
        return dict.fromkeys(SCORES, math.nan)
    true = probs[np.arange(y.size), y][:, None]
    p_true = np.clip(true[:, 0], 1e-7, 1.0)
    # A tie across the 5th place counts in proportion (Keras: a hit; collapsed models won).
    above, tied = (probs > true).sum(axis=1), (probs == true).sum(axis=1)
    top5 = np.clip((TOP_K - above) / tied, 0.0, 1.0)
    by_part = probs.reshape(-1, N_CONSONANTS, N_VOWELS)
    return {
        "loss": float(-np.mean(np.log(p_true))),
        "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        "top5_accuracy": float(np.mean(top5)),
        "consonant_accuracy": float(
            np.mean(by_part.sum(axis=2).argmax(axis=1) == CONSONANT_OF_CLASS[y])
        ),
        "vowel_accuracy": float(np.mean(by_part.sum(axis=1).argmax(axis=1) == VOWEL_OF_CLASS[y])),
    }


def confusion_matrix(
    y: np.ndarray, predicted: np.ndarray, n_classes: int = N_CLASSES
) -> np.ndarray:
    """Counts int64 [n_classes, n_classes]: row = true class, column = predicted class."""
    flat = np.bincount(y * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def stratified_folds(y: np.ndarray, n_folds: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Fold index [n] of every trial: each class's trials dealt round-robin into the
    folds in random order, starting at a random fold per class (so folds differ in size
    by at most one trial per class and by little overall)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(y.size), y))  # by class, random within a class
    sorted_y = y[order]
    rank = np.arange(y.size) - np.searchsorted(sorted_y, sorted_y)  # index within class
    start = rng.integers(0, n_folds, int(y.max(initial=0)) + 1)
    folds = np.empty(y.size, dtype=np.int64)
    folds[order] = (rank + start[sorted_y]) % n_folds
    return folds


def fold_split(folds: np.ndarray, fold: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Split index [n] (0 train, 1 validation, 2 test): test = ``fold``, validation =
    the next fold, training = the rest."""
    split = np.zeros(folds.size, dtype=np.int64)
    split[folds == (fold + 1) % n_folds] = 1
    split[folds == fold] = 2
    return split


def _standardised(
    x: np.ndarray, y: np.ndarray, session: np.ndarray, split: np.ndarray, rate: int
) -> SpeechData:
    n, n_electrodes, n_time = x.shape
    flat = x.reshape(n, -1)
    parts = {s: split == i for i, s in enumerate(SPLITS)}  # none empty (load_data)
    # In place on the split copies: a 200 Hz data set is hundreds of MB.
    xs = {s: flat[m] for s, m in parts.items()}
    mean = xs["train"].mean(axis=0, dtype=np.float64).astype(np.float32)
    for v in xs.values():
        v -= mean
    scale = float(np.sqrt(np.mean(np.square(xs["train"]), dtype=np.float64))) or 1.0
    for v in xs.values():
        v /= np.float32(scale)

    return SpeechData(
        **{f"x_{s}": v for s, v in xs.items()},
        **{f"y_{s}": y[m] for s, m in parts.items()},
        **{f"session_{s}": session[m] for s, m in parts.items()},
        n_electrodes=n_electrodes,
        n_time=n_time,
        sample_rate=rate,
        mean=mean,
        scale=scale,
    )


# --- files -----------------------------------------------------------------------------


def read_recording(path: Path, sample_rate: int) -> dict[str, Any]:
    """The arrays of the documented layout, checked, ``x`` binned to ``sample_rate``;
    ``session`` zeros and ``split`` absent (None) when the file has none."""
    raw = read_arrays(
        path,
        ("x", "y", "session", "split", "sample_rate"),
        "speech",
        optional=("session", "split", "sample_rate"),
        expected="x [n, electrodes, time] and y [n]",
    )
    x, y = raw["x"], raw["y"]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(
            f"{path}: x has shape {x.shape} ({x.dtype}); expected numbers [n, electrodes, time]"
        )
    n = len(x)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(
            f"{path}: y has shape {y.shape}; expected ({n},), one label per trial of x"
        )
    if (
        not np.issubdtype(y.dtype, np.integer)
        or y.min(initial=0) < 0
        or y.max(initial=0) >= N_CLASSES
    ):
        raise ValueError(
            f"{path}: y must hold integer labels 0-{N_CLASSES - 1} (phonetics.CV_NAMES)"
        )
    out: dict[str, Any] = {"y": y.astype(np.int64)}
    for name, default in (("session", np.zeros(n, np.int64)), ("split", None)):
        value = raw.get(name, default)
        if value is not None and (
            value.shape != (n,) or not np.issubdtype(value.dtype, np.integer)
        ):
            raise ValueError(
                f"{path}: {name} must be integers of shape ({n},), got {value.shape} {value.dtype}"
            )
        out[name] = None if value is None else value.astype(np.int64)
    if out["split"] is not None and not np.isin(out["split"], (0, 1, 2)).all():
        raise ValueError(f"{path}: split must hold 0 (train), 1 (validation) or 2 (test)")
    file_rate = _scalar_rate(path, raw.get("sample_rate"))
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: x contains NaN or infinite values")
    factor = _factor(path, file_rate, sample_rate)
    if x.shape[2] < factor:
        raise ValueError(
            f"{path}: x has {x.shape[2]} samples, fewer than one {sample_rate} Hz bin"
        )
    out["x"] = np.ascontiguousarray(synthetic.bin_average(x, factor))
    return out


def _file_shape(path: Path) -> tuple[tuple[int, int], int]:
    """(electrodes, time) of ``x`` and the file's sample rate, without reading ``x``."""
    if check_file(path, "speech") == ".npz":
        with np.load(path) as f:
            if "x" not in f.files:
                raise ValueError(f"{path}: missing array 'x'")
            shape = npz_shape(f, "x")
            rate = np.asarray(f["sample_rate"]) if "sample_rate" in f.files else None
    else:
        with h5py_module(path).File(path, "r") as f:
            if "x" not in f:
                raise ValueError(f"{path}: missing array 'x'")
            shape = f["x"].shape
            rate = np.asarray(f["sample_rate"]) if "sample_rate" in f else None
    if len(shape) != 3:
        raise ValueError(f"{path}: x has shape {shape}; expected [n, electrodes, time]")
    return (int(shape[1]), int(shape[2])), _scalar_rate(path, rate)


def _scalar_rate(path: Path, value: np.ndarray | None) -> int:
    if value is None:
        return synthetic.SAMPLE_RATE
    value = np.asarray(value)
    rate = float(value.reshape(-1)[0]) if value.size == 1 else math.nan  # NaN: refused below
    if not rate.is_integer() or rate < 1:
        got = value.tolist()
        raise ValueError(f"{path}: sample_rate must be a positive whole number of Hz, got {got}")
    return int(rate)


def _factor(path: Path, file_rate: int, rate: int) -> int:
    try:
        return synthetic.decimation(file_rate, rate)
    except ValueError:
        raise ValueError(
            f"{path}: recorded at {file_rate} Hz, which the option sample_rate={rate} "
            "does not divide; choose a rate that does"
        ) from None
