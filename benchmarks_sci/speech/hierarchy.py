"""Hierarchical clustering of a decoder's confusions (Livezey et al. 2019, Fig. 4 style).

Two syllables are close when the decoder confuses them with the same syllables: the
distance between two classes is the Hellinger distance between their rows of the
row-normalised confusion matrix (rows of classes absent from the validation split are
uniform). Average linkage on those distances gives the dendrogram a report draws next
to ``phonetics.feature_table``; cutting it (``clusters``) gives groups to compare with
the articulatory features (``phonetics.consonant_groups``).

scipy is imported inside the functions (it comes with scikit-learn).
"""

from __future__ import annotations

import numpy as np

from benchmarks_sci.speech.phonetics import N_CONSONANTS, N_VOWELS


def consonant_confusion(confusion: np.ndarray) -> np.ndarray:
    """[57, 57] syllable confusions -> [19, 19] consonant confusions (vowels summed)."""
    c = np.asarray(confusion)
    return c.reshape(N_CONSONANTS, N_VOWELS, N_CONSONANTS, N_VOWELS).sum(axis=(1, 3))


def confusion_distances(confusion: np.ndarray) -> np.ndarray:
    """Condensed (scipy ``pdist`` order) Hellinger distances between the rows of the
    row-normalised ``confusion`` [k, k]."""
    from scipy.spatial.distance import pdist

    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or (c < 0).any():
        raise ValueError(f"expected a square matrix of non-negative counts, got shape {c.shape}")
    totals = c.sum(axis=1, keepdims=True)
    rows = np.where(totals > 0, c / np.where(totals > 0, totals, 1.0), 1.0 / len(c))
    return pdist(np.sqrt(rows), "euclidean") / np.sqrt(2.0)


def linkage(confusion: np.ndarray, method: str = "average") -> np.ndarray:
    """scipy linkage matrix [k - 1, 4] of the classes of ``confusion``."""
    from scipy.cluster import hierarchy

    return hierarchy.linkage(confusion_distances(confusion), method=method)


def clusters(confusion: np.ndarray, n_clusters: int, method: str = "average") -> np.ndarray:
    """Cluster label [k] (0-based) of each class, the dendrogram cut into at most
    ``n_clusters`` clusters."""
    from scipy.cluster import hierarchy

    labels = hierarchy.fcluster(linkage(confusion, method), n_clusters, criterion="maxclust")
    return labels.astype(np.int64) - 1
