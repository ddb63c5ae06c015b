"""The nanopore benchmark: Chiron's CNN + BiLSTM + CTC basecaller on squiggle segments.

Data are synthetic by default (``synthetic.make_dataset``: reads from a fixed 5-mer pore
model, cut into segments; train, validation and test drawn from independent streams of
the data seed, so changing ``n_train`` leaves the validation set unchanged). With
``data_path`` set, real segments are read instead, and ``n_train``, ``n_val``,
``n_test``, ``segment_length`` and ``difficulty`` are ignored.

Real-data file layout (``.npz``, or ``.h5``/``.hdf5`` with the same names as datasets at
the root; HDF5 needs h5py), for each split ``train``, ``val`` and ``test``:

* ``signal_<split>``: float array [n, L], one segment of raw current per row, all splits
  of the same length L (Chiron: 400 samples), normalised per read as basecallers do
  (median 0, MAD x 1.4826 = 1); the loader uses it as it is.
* ``labels_<split>``: integer array [n, max_len], the reference bases of each segment in
  order, A, C, G, T = 0, 1, 2, 3, each row padded with -1 after its last base.

Metrics: reads are decoded from the model's per-step probabilities (``decoder``: greedy
best path by default, or CTC beam search of ``beam_width``) and scored by read identity,
1 - edit distance / reference length, averaged over segments (``val_identity``,
``test_identity``); ``val_loss`` is the mean CTC loss per segment on the validation set.
All are scored by this module after every epoch; the per-epoch ``loss`` is Keras'
training average. A diverged trial (non-finite loss) stops at once and returns NaN metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import benchmarks_sci.nanopore.decode as decode
import benchmarks_sci.nanopore.synthetic as synthetic
from benchmarks_sci.datafiles import DataPathOption, read_arrays, write_arrays
from benchmarks_sci.hyperparams import TableChecked
from benchmarks_sci.keras_fit import fit_reporting
from benchmarks_sci.nanopore.model import ctc_steps_needed
from benchmarks_sci.splits import SPLITS, generate_splits
from supervisor.benchmarks import Benchmark, Direction, EpochReport, Option

ARRAYS = tuple(f"{a}_{s}" for s in SPLITS for a in ("signal", "labels"))
DECODERS = ("greedy", "beam_search")
_PREDICT_BATCH = 256  # inference only: larger batches are faster and change nothing


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class NanoporeData:
    """Normalised signal segments float32 [n, L] and their labels int32 [n, max_len]
    (bases 0..3, -1-padded)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def segment_length(self) -> int:
        return int(self.x_train.shape[1])


class NanoporeBenchmark(TableChecked, Benchmark):
    """Basecalling of nanopore squiggle segments (Chiron; DeepNano/Bonito lineage)."""

    name = "nanopore"
    param_table = "benchmarks_sci.nanopore.model"  # the hyper-parameters a space file may give
    ensemble_kind = "sequence"
    metrics: ClassVar[dict[str, Direction]] = {
        "val_identity": "maximize",
        "val_loss": "minimize",
        "test_identity": "maximize",
    }
    # Short segments and a small model: Chiron's default trains at only a few 400-sample
    # segments per second on 2 cores, and TF takes minutes to trace its 3 BiLSTMs.
    tiny_options: ClassVar[dict[str, Any]] = {
        "n_train": 16,
        "n_val": 8,
        "n_test": 8,
        "segment_length": 100,
    }
    tiny_params: ClassVar[dict[str, Any]] = {
        "conv_blocks": 1,
        "conv_filters": 16,
        "lstm_layers": 1,
        "lstm_units": 16,
        "batch_size": 8,
    }
    options: ClassVar[dict[str, Option]] = {
        "n_train": Option(6000, "synthetic training segments", low=2, high=5_000_000),
        "n_val": Option(1000, "synthetic validation segments", low=1, high=1_000_000),
        "n_test": Option(1000, "synthetic test segments", low=1, high=1_000_000),
        "segment_length": Option(
            synthetic.SEGMENT_LENGTH, "samples per segment (Chiron: 400)", low=32, high=100_000
        ),
        "difficulty": Option(
            synthetic.DEFAULT_DIFFICULTY,
            "0: little noise, regular dwell times; 1: strong noise and drift, erratic dwell",
            low=0.0,
            high=1.0,
        ),
        "decoder": Option("greedy", "how reads are decoded for scoring", choices=DECODERS),
        "beam_width": Option(
            30, "beams of the beam_search decoder (Chiron: 30)", low=1, high=1000
        ),
        "data_path": DataPathOption("", "an .npz/.h5 file of real segments; empty: synthetic"),
    }

    def load_data(self, seed: int) -> NanoporeData:
        if self.config["data_path"]:
            arrays = read_segments(Path(self.config["data_path"]))
            parts = {s: (arrays[f"signal_{s}"], arrays[f"labels_{s}"]) for s in SPLITS}
        else:
            difficulty, length = self.config["difficulty"], self.config["segment_length"]
            parts = generate_splits(
                seed, self.config, lambda n, s: synthetic.make_dataset(n, s, difficulty, length)
            )
        fields = {}
        for split, (x, y) in parts.items():
            fields[f"x_{split}"], fields[f"y_{split}"] = x, y
        return NanoporeData(**fields)

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        from benchmarks_sci.nanopore.model import build_model

        return build_model(params, seed)

    def fit(
        self,
        model: Any,
        data: NanoporeData,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        from benchmarks_sci.nanopore.model import check_stride, resolve_params

        hp = resolve_params(params)
        for y in (data.y_train, data.y_val, data.y_test):
            check_stride(hp, data.segment_length, y)

        def validate(m: Any, diverged: bool) -> dict[str, float]:
            # Scored here, not by Keras: identity needs decoded reads, and one forward pass
            # gives both them and the CTC loss. A diverged trial scores NaN even if its
            # weights are finite (an infinite CTC loss can come with finite gradients).
            return dict(_NAN) if diverged else self._score(m, data.x_val, data.y_val)

        outcome = fit_reporting(
            model,
            data.x_train,
            data.y_train,
            batch_size=hp.batch_size,
            epochs=epochs,
            report=report,
            validate=validate,
            val_reported=("loss", "identity"),
        )
        val = outcome.val
        if outcome.diverged or math.isnan(val["identity"]):
            test = math.nan
        else:
            test = self._score(model, data.x_test, data.y_test, with_loss=False)["identity"]
        return {"val_identity": val["identity"], "val_loss": val["loss"], "test_identity": test}

    def predict(self, model: Any, x: Any) -> np.ndarray:
        """Per-step probabilities float32 [n, T, 5] (A, C, G, T, blank) for signal [n, L];
        T = L / stride, rounded up."""
        return _softmax(self._logits(model, x))

    def decode(self, probs: np.ndarray) -> np.ndarray:
        """Reads (int32 [n, width], -1-padded) with the configured decoder."""
        if self.config["decoder"] == "beam_search":
            return decode.beam_search_decode(probs, self.config["beam_width"])
        return decode.greedy_decode(probs)

    def read_identity(self, reads: np.ndarray, references: np.ndarray) -> np.ndarray:
        """Identity of decoded reads against their references, per read (float64 [n])."""
        return decode.identity(reads, references)

    def save_data(self, data: NanoporeData, path: Path) -> None:
        """Signal and labels in the documented layout (labels as int8): .npz, or HDF5 for
        an .h5/.hdf5 path."""
        arrays = {}
        for split in SPLITS:
            arrays[f"signal_{split}"] = getattr(data, f"x_{split}")
            arrays[f"labels_{split}"] = getattr(data, f"y_{split}").astype(np.int8)
        write_arrays(path, arrays)

    def artifacts(
        self, model: Any, data: NanoporeData, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The first validation segment (``signal``), its ``reference`` and its
        ``decoded`` read (base codes into "ACGT"), for the report's basecaller panel."""
        signal = data.x_val[:1]
        read = self.decode(self.predict(model, signal))
        return {
            "signal": signal[0],
            "reference": _unpad(data.y_val[0]),
            "decoded": _unpad(read[0]),
        }

    def _score(
        self, model: Any, x: np.ndarray, y: np.ndarray, with_loss: bool = True
    ) -> dict[str, float]:
        """Mean read identity and (optionally) mean CTC loss; NaN if the model diverged."""
        logits = self._logits(model, x)
        if not np.isfinite(logits).all():
            return dict(_NAN)
        reads = self.decode(_softmax(logits))
        out = {"identity": float(np.mean(decode.identity(reads, y)))}
        if with_loss:
            out["loss"] = _mean_ctc_loss(logits, y)
        return out

    def _logits(self, model: Any, x: Any) -> np.ndarray:
        return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), np.float32)


_NAN = {"identity": math.nan, "loss": math.nan}  # the scores of a diverged model


def _mean_ctc_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean CTC loss per segment, in chunks of one size (padded with the last segment),
    so that a jitted loss compiles once."""
    from benchmarks_sci.nanopore.model import scoring_ctc_loss

    loss = scoring_ctc_loss()
    total, size = 0.0, _PREDICT_BATCH
    for start in range(0, len(logits), size):
        x, y = logits[start : start + size], labels[start : start + size]
        n = len(x)
        if n < size and len(logits) > size:
            fill = np.arange(size) % n  # repeat the chunk's segments to the full size
            x, y = x[fill], y[fill]
        total += float(np.sum(np.asarray(loss(y, x), dtype=np.float64)[:n]))
    return total / len(logits)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def _unpad(read: np.ndarray) -> np.ndarray:
    return np.asarray(read[read >= 0], dtype=np.int8)


def read_segments(path: Path) -> dict[str, np.ndarray]:
    """The six arrays of the documented layout, checked (see the module doc)."""
    raw = read_arrays(path, ARRAYS, "nanopore")
    out: dict[str, np.ndarray] = {}
    for split in SPLITS:
        signal, labels = raw[f"signal_{split}"], raw[f"labels_{split}"]
        out[f"signal_{split}"] = _signal(path, split, signal, raw["signal_train"])
        out[f"labels_{split}"] = _labels(path, split, labels)
        if len(signal) != len(labels):
            raise ValueError(
                f"{path}: signal_{split} has {len(signal)} segments "
                f"but labels_{split} {len(labels)}"
            )
        # More bases than samples cannot be aligned at any stride: the file's fault, not
        # the trial's (check_stride would blame the stride in every trial).
        needed = ctc_steps_needed(out[f"labels_{split}"])
        worst = int(needed.argmax())  # no split is empty (_signal)
        if needed[worst] > signal.shape[1]:
            raise ValueError(
                f"{path}: labels_{split} row {worst} needs {needed[worst]} time steps (a base "
                f"each, a blank between repeats), more than the {signal.shape[1]} samples "
                "of its segment"
            )
    return out


def _signal(path: Path, split: str, x: np.ndarray, train: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number) or len(x) == 0:
        raise ValueError(f"{path}: signal_{split} must be a numeric array [n, L], got {x.shape}")
    if x.shape[1] != train.shape[-1]:
        raise ValueError(
            f"{path}: signal_{split} has segments of {x.shape[1]} samples, "
            f"signal_train of {train.shape[-1]}; all splits need the same length"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: signal_{split} contains NaN or infinite values")
    return x


def _labels(path: Path, split: str, y: np.ndarray) -> np.ndarray:
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: labels_{split} must be an integer array [n, max_len]")
    if y.size and (y.min() < -1 or y.max() > 3):
        raise ValueError(f"{path}: labels_{split} must hold bases 0..3 (A, C, G, T) or -1")
    padding = y < 0
    if np.any(padding[:, :-1] & ~padding[:, 1:]):
        raise ValueError(f"{path}: labels_{split} has a base after -1 padding")
    return y.astype(np.int32)
