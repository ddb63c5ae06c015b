"""From per-step base probabilities to reads, and how close reads are to their reference.

Reads are integer arrays [n, width] of bases 0..3 (A, C, G, T), each row padded with -1
after its last base; the model's 5 outputs are A, C, G, T and the CTC blank (last).

* ``greedy_decode``: best path (argmax per step), repeats merged, blanks dropped; numpy.
* ``beam_search_decode``: CTC prefix beam search, with TensorFlow's C++ decoder whatever
  the Keras backend (``keras.ops.ctc_decode`` on JAX takes ~13 s for 8 x 100 steps on
  this CPU, unjitted, against ~2 ms on TensorFlow). TensorFlow is a dependency anyway.
* ``edit_distance``: Levenshtein distance of many pairs at once. Hand-written because no
  edit-distance library is installed (``tf.edit_distance`` needs sparse tensors and TF):
  one numpy pass per reference base, vectorised over pairs and read positions; the
  insertion chain within a row is a running minimum (``np.minimum.accumulate``).
* ``identity``: 1 - edit distance / reference length, per read.
"""

from __future__ import annotations

import numpy as np

from benchmarks_sci.nanopore.synthetic import BASES, BLANK


def greedy_decode(probs: np.ndarray) -> np.ndarray:
    """Best-path reads (int32 [n, width], -1-padded) from probabilities or logits [n, T, 5]."""
    return collapse(np.asarray(probs).argmax(axis=-1))


def collapse(path: np.ndarray, blank: int = BLANK) -> np.ndarray:
    """CTC's many-to-one map of label paths [n, T]: merge repeats, then drop blanks."""
    path = np.asarray(path)
    keep = path != blank
    keep[:, 1:] &= path[:, 1:] != path[:, :-1]
    lengths = keep.sum(axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")  # kept steps first, in time order
    width = int(lengths.max(initial=0))
    reads = np.take_along_axis(path, order[:, :width], axis=1).astype(np.int32)
    reads[np.arange(width)[None, :] >= lengths[:, None]] = -1
    return reads


def beam_search_decode(probs: np.ndarray, beam_width: int) -> np.ndarray:
    """Most probable reads by CTC prefix beam search (int32 [n, width], -1-padded)."""
    import tensorflow as tf

    probs = np.asarray(probs, dtype=np.float32)
    n, steps = probs.shape[:2]
    log_probs = np.log(np.maximum(probs, 1e-30)).transpose(1, 0, 2)  # time-major
    # TensorFlow's decoder takes the blank as the last class, as ours is.
    decoded, _ = tf.nn.ctc_beam_search_decoder(
        log_probs, np.full(n, steps, np.int32), beam_width=beam_width, top_paths=1
    )
    best = decoded[0]
    width = int(best.dense_shape[1]) if n else 0
    reads = np.full((n, width), -1, dtype=np.int32)
    index = best.indices.numpy()
    reads[index[:, 0], index[:, 1]] = best.values.numpy()
    return reads


def edit_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levenshtein distances (int64 [n]) between the rows of two -1-padded arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"expected two arrays [n, width] of equal n, got {a.shape}, {b.shape}")
    len_a, len_b = _lengths(a), _lengths(b)
    n, width = b.shape
    j = np.arange(width + 1)
    row = np.tile(j, (n, 1))  # D[0, j] = j: j insertions
    rows = np.arange(n)
    out = len_b.copy()  # empty a
    for i in range(int(len_a.max(initial=0))):
        # Row i + 1 of the DP table from row i: substitution/match or deletion first ...
        candidate = np.empty_like(row)
        candidate[:, 0] = i + 1
        np.minimum(row[:, :-1] + (a[:, i : i + 1] != b), row[:, 1:] + 1, out=candidate[:, 1:])
        # ... then insertions: D[j] = min over k <= j of candidate[k] + (j - k).
        row = np.minimum.accumulate(candidate - j, axis=1) + j
        done = len_a == i + 1
        out[done] = row[rows[done], len_b[done]]
    return out


def identity(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Read identity 1 - edit distance / reference length per read (float64 [n]); an
    empty reference counts as length 1, so that any base called for it is an error."""
    return 1.0 - edit_distance(decoded, reference) / np.maximum(_lengths(reference), 1)


def pad(reads: list[str] | list[list[int]]) -> np.ndarray:
    """Reads as base strings ("ACGT") or integer lists -> an int32 -1-padded array."""
    codes = [[BASES.index(c) for c in r] if isinstance(r, str) else list(r) for r in reads]
    out = np.full((len(codes), max((len(c) for c in codes), default=0)), -1, dtype=np.int32)
    for i, c in enumerate(codes):
        out[i, : len(c)] = c
    return out


def to_string(read: np.ndarray) -> str:
    """One -1-padded read as a base string."""
    return "".join(BASES[int(c)] for c in np.asarray(read) if c >= 0)


def _lengths(reads: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(reads >= 0, axis=1), dtype=np.int64)
