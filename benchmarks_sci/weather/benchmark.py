"""The weather benchmark: the seed's extreme-weather classifiers (Liu et al. 2016).

Three tasks (option ``task``), each a binary classification of patches: ``tc`` tropical
cyclone vs background, ``ar`` atmospheric river vs background, ``wf`` weather front vs
background. Models (hyper-parameter ``method``, see ``methods``): the seed's ConvNet
of each task (``cnn``, ``model.py``) or a classical baseline of the seed's table
(``logreg``, ``knn``, ``svm``, ``random_forest``; ``baselines.py``).

Data are synthetic by default (``synthetic.make_tc_dataset``,
``synthetic_ar.make_ar_dataset``, ``synthetic_wf.make_wf_dataset``; train, validation
and test drawn from independent streams of the data seed, so changing ``n_train``
leaves the validation set unchanged). With ``data_path`` set, real patches are read
instead and ``n_train``, ``n_val``, ``n_test`` and ``difficulty`` are ignored.

Real-data file layout (``.npz``, or ``.h5``/``.hdf5`` with the same names as datasets
at the root; HDF5 needs h5py):

* ``x_train``, ``x_val``, ``x_test``: float arrays [n, H, W, C], channels last:

  ====  ===========  ===========================================================
  task  H, W, C      channels, in this order
  ====  ===========  ===========================================================
  tc    32, 32, 8    PSL, UBOT, VBOT, TMQ, U850, V850, T200, T500
  ar    148, 224, 2  TMQ, LANDFRAC (land-sea mask)
  wf    27, 60, 3    TREFHT (2 m temperature), PRECT (precipitation), PSL
  ====  ===========  ===========================================================

  Channels first, [n, C, H, W], is recognised and transposed. Any units: inputs are
  standardised per channel with the training split's mean and standard deviation.
* ``y_train``, ``y_val``, ``y_test``: labels [n], 1 = the event (cyclone, river,
  front), 0 = background (one-hot [n, 2] is accepted too); the training and validation
  splits must hold both classes.

``save_data`` writes a data set (e.g. the synthetic one) in this layout.

Metrics: ``val_loss`` is the cross-entropy without the L2 penalty (comparable across
``l2`` values and methods), scored by this module along with ``val_accuracy`` and
``val_auc``: after every epoch for the ConvNet, once (as epoch 0) for a baseline,
which has no epochs. The ConvNet's per-epoch ``loss``/``accuracy`` are Keras' training
averages. A diverged trial (non-finite loss) stops at once and returns NaN metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import benchmarks_sci.weather.synthetic as synthetic
import benchmarks_sci.weather.synthetic_ar as synthetic_ar
import benchmarks_sci.weather.synthetic_wf as synthetic_wf
from benchmarks_sci.datafiles import DataPathOption, read_arrays, write_arrays
from benchmarks_sci.hyperparams import TableChecked
from benchmarks_sci.keras_fit import fit_reporting
from benchmarks_sci.splits import SPLITS, generate_splits
from benchmarks_sci.weather.baselines import (
    BaselineParams,
    baseline_probabilities,
    build_baseline,
    count_baseline_params,
    fit_baseline,
)
from benchmarks_sci.weather.methods import resolve
from benchmarks_sci.weather.model import build_convnet
from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option

ARRAYS = tuple(f"{a}_{s}" for s in SPLITS for a in ("x", "y"))
# Inference batches: large ones are faster and change nothing, up to memory: 1,024 TC or
# WF patches, 253 AR ones (1,024 AR patches exhaust memory in TF's 12 x 12 convolutions).
_PREDICT_BATCH = 1024
_PREDICT_VALUES = 1 << 24  # input values per inference batch, at most

# task: (generator(n, seed, difficulty) -> (x, y), channel names, patch shape)
Generator = Callable[[int, np.random.SeedSequence, float], tuple[np.ndarray, np.ndarray]]
TASKS: dict[str, tuple[Generator, tuple[str, ...], tuple[int, int, int]]] = {
    "tc": (synthetic.make_tc_dataset, synthetic.CHANNELS, synthetic.TC_SHAPE),
    "ar": (synthetic_ar.make_ar_dataset, synthetic_ar.CHANNELS, synthetic_ar.AR_SHAPE),
    "wf": (synthetic_wf.make_wf_dataset, synthetic_wf.CHANNELS, synthetic_wf.WF_SHAPE),
}


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class WeatherData:
    """Standardised float32 inputs [n, H, W, C], int64 labels [n], and the statistics."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    channels: tuple[str, ...]
    mean: np.ndarray  # per-channel mean of the raw training inputs
    std: np.ndarray  # per-channel standard deviation of the raw training inputs

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Raw patches -> model inputs, with the training split's statistics (a copy)."""
        return synthetic.standardize(np.array(x, dtype=np.float32), self.mean, self.std)


class WeatherBenchmark(TableChecked, Benchmark):
    """Binary classification of extreme-weather patches (Liu et al. 2016)."""

    name = "weather"
    param_table = "benchmarks_sci.weather.methods"  # the hyper-parameters a space file may give
    ensemble_kind = "classification"
    metrics: ClassVar[dict[str, Direction]] = {
        "val_accuracy": "maximize",
        "val_loss": "minimize",
        "val_auc": "maximize",
        "test_accuracy": "maximize",
    }
    tiny_options: ClassVar[dict[str, Any]] = {"n_train": 256, "n_val": 64, "n_test": 64}
    options: ClassVar[dict[str, Option]] = {
        "task": Option(
            "tc",
            "tc: tropical cyclone, ar: atmospheric river, wf: weather front (vs background)",
            choices=tuple(TASKS),
        ),
        "n_train": Option(8000, "synthetic training patches", low=2, high=2_000_000),
        "n_val": Option(2000, "synthetic validation patches", low=2, high=1_000_000),
        "n_test": Option(2000, "synthetic test patches", low=2, high=1_000_000),
        "difficulty": Option(
            synthetic.DEFAULT_DIFFICULTY,
            "0: strong, clear events, few decoys; 1: weak ones, many strong decoys",
            low=0.0,
            high=1.0,
        ),
        "data_path": DataPathOption("", "an .npz/.h5 file of real patches; empty: synthetic"),
    }

    def load_data(self, seed: int) -> WeatherData:
        task = self.config["task"]
        generate, channels, shape = TASKS[task]
        if self.config["data_path"]:
            arrays = read_patches(Path(self.config["data_path"]), shape)
        else:
            difficulty = self.config["difficulty"]
            arrays = {}
            parts = generate_splits(seed, self.config, lambda n, s: generate(n, s, difficulty))
            for split, (x, y) in parts.items():
                arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        mean, std = synthetic.channel_stats(arrays["x_train"])
        for split in SPLITS:  # in place: the AR set is GBs
            arrays[f"x_{split}"] = synthetic.standardize(arrays[f"x_{split}"], mean, std)
        return WeatherData(**arrays, channels=channels, mean=mean, std=std)

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        """A compiled Keras model (``method: cnn``, the default) or an unfitted
        scikit-learn pipeline (the baselines)."""
        hp = resolve(params, self.config["task"])
        if isinstance(hp, BaselineParams):
            return build_baseline(hp, seed)
        return build_convnet(hp, seed, task=self.config["task"])

    def fit(
        self,
        model: Any,
        data: WeatherData,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        hp = resolve(params, self.config["task"])
        if isinstance(hp, BaselineParams):
            return self._fit_baseline(model, data, hp, report)
        # Scored here rather than by Keras so that per-epoch and final val_loss are the
        # same quantity: the data loss without the L2 penalty.
        outcome = fit_reporting(
            model,
            data.x_train,
            data.y_train,
            batch_size=hp.batch_size,
            epochs=epochs,
            report=report,
            validate=lambda m, _: _scores(self.predict(m, data.x_val), data.y_val),
            val_reported=("loss", "accuracy", "auc"),
            logged=("loss", "accuracy"),
        )
        return _final(outcome.val, _scores(self.predict(model, data.x_test), data.y_test))

    def _fit_baseline(
        self, model: Any, data: WeatherData, hp: BaselineParams, report: EpochReport
    ) -> dict[str, float]:
        """Fit a baseline once, whatever ``epochs``; its scores are reported as epoch 0
        (a request to stop comes too late to matter)."""
        fit_baseline(model, hp, data.x_train, data.y_train)
        val = _scores(self.predict(model, data.x_val), data.y_val)
        report(0, {f"val_{k}": v for k, v in val.items()})
        return _final(val, _scores(self.predict(model, data.x_test), data.y_test))

    def save_data(self, data: WeatherData, path: Path) -> None:
        """The raw (un-standardised) patches and labels in the documented layout: .npz,
        or HDF5 for an .h5/.hdf5 path."""
        arrays = {}
        for split in SPLITS:
            raw = getattr(data, f"x_{split}") * data.std  # one float32 copy (AR: GBs)
            raw += data.mean
            arrays[f"x_{split}"] = raw
            arrays[f"y_{split}"] = getattr(data, f"y_{split}")
        write_arrays(path, arrays)

    def predict(self, model: Any, x: Any) -> np.ndarray:
        """Class probabilities float32 [n, 2] for standardised inputs (``WeatherData.x_*``)."""
        if _is_baseline(model):
            return baseline_probabilities(model, x)
        probs = model.predict(x, batch_size=predict_batch(np.shape(x)), verbose=0)
        return np.asarray(probs, dtype=np.float32)

    def count_params(self, model: Any) -> int:
        """Weights of the ConvNet; for a fitted baseline, the numbers it keeps to predict
        (see ``baselines.count_baseline_params``)."""
        if _is_baseline(model):
            return count_baseline_params(model)
        return int(model.count_params())


def predict_batch(shape: tuple[int, ...]) -> int:
    """Inference batch size for inputs of ``shape`` [n, H, W, C] (see _PREDICT_VALUES)."""
    per_patch = max(1, math.prod(shape[1:]))
    return max(1, min(_PREDICT_BATCH, _PREDICT_VALUES // per_patch))


def _is_baseline(model: Any) -> bool:
    """A scikit-learn pipeline (from ``build_baseline``) rather than a Keras model."""
    return hasattr(model, "named_steps")


def _final(val: dict[str, float], test: dict[str, float]) -> dict[str, float]:
    """The metrics ``fit`` returns, from the validation and test scores."""
    return {
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "val_auc": val["auc"],
        "test_accuracy": test["accuracy"],
    }


def _scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-entropy (Keras' clipping), accuracy and ROC AUC of class-1 probabilities;
    all NaN if the model diverged (argmax of NaN would score like a coin flip)."""
    if not np.isfinite(probs).all():
        return dict.fromkeys(("loss", "accuracy", "auc"), math.nan)
    p_true = np.clip(probs[np.arange(y.size), y], 1e-7, 1.0)
    return {
        "loss": float(-np.mean(np.log(p_true))),
        "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        "auc": roc_auc(probs[:, 1], y),
    }


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count half); NaN with one class."""
    n_pos = int(np.sum(y == 1))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    # Average rank (1-based) of each distinct score, so tied scores share their ranks.
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(avg_rank[inverse][y == 1].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def read_patches(path: Path, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """The six arrays of the documented layout, checked and normalised (see module doc)."""
    raw = read_arrays(path, ARRAYS, "weather")
    out: dict[str, np.ndarray] = {}
    for split in SPLITS:
        x, y = (
            _inputs(path, split, raw[f"x_{split}"], shape),
            _labels(path, split, raw[f"y_{split}"]),
        )
        if len(x) != len(y):
            raise ValueError(
                f"{path}: x_{split} has {len(x)} patches but y_{split} {len(y)} labels"
            )
        if split != "test" and len(present := np.unique(y)) == 1:
            # val_auc is NaN on every trial, each failed as diverged; a model that says
            # one class scores 100 % val_accuracy; nothing is learnt from one class.
            raise ValueError(
                f"{path}: y_{split} holds label {present[0]} only: the {split} split needs"
                " both classes (events and background)"
            )
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def _inputs(path: Path, split: str, x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    channels_first = (shape[2], shape[0], shape[1])
    if x.ndim == 4 and x.shape[1:] == channels_first and x.shape[1:] != shape:
        x = np.moveaxis(x, 1, -1)
    if x.ndim != 4 or x.shape[1:] != shape:
        raise ValueError(
            f"{path}: x_{split} has shape {x.shape}; expected (n, {', '.join(map(str, shape))})"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{path}: x_{split} is not real numbers ({x.dtype})")
    if len(x) == 0:  # no statistics to standardise with, or NaN scores every epoch
        raise ValueError(f"{path}: x_{split} holds no patches")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: x_{split} contains NaN or infinite values")
    return x


def _labels(path: Path, split: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 2:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            # argmax would read [1, 1], [0, 0] or soft labels as class 0
            raise ValueError(f"{path}: y_{split} is (n, 2) but not one-hot (one 1 per row)")
        y = y.argmax(axis=1)  # one-hot
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise ValueError(f"{path}: y_{split} must hold labels 0/1 of shape (n,) or one-hot (n, 2)")
    return y.astype(np.int64)
