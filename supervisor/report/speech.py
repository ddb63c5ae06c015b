"""The clustered confusion matrix (the speech decoder's panel; any classifier's matrix).

Livezey et al. (2019) cluster the confusion matrix of the consonant-vowel decoder
hierarchically: syllables the network confuses end up side by side, and the order
recovers articulatory structure (place and manner of the consonant, the vowel). As
``benchmarks_sci.speech.hierarchy`` does, two classes are close when their rows of the
row-normalised matrix are (Hellinger distance; rows of classes never seen are uniform),
clustered with average linkage; scipy puts the leaves in optimal order. Without scipy, a
spectral ordering in numpy: classes sorted by the Fiedler vector of the graph whose edge
weights are the rows' Bhattacharyya coefficients (1 - squared Hellinger distance), which
also puts classes with similar confusions next to each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from supervisor.report.page import Html, Page, note


def row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row as shares of its total; a row with no samples is uniform."""
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / max(1, counts.shape[1]))
    return np.divide(counts, totals, out=uniform, where=totals > 0)


def cluster_order(matrix: np.ndarray) -> tuple[list[int], str]:
    """Class order that puts classes with similar confusions side by side, and how."""
    roots = np.sqrt(row_shares(matrix))
    n = roots.shape[0]
    if n < 3:
        return list(range(n)), "too few classes to cluster"
    try:
        from scipy.cluster.hierarchy import leaves_list, linkage
        from scipy.spatial.distance import pdist
    except ImportError:
        return _spectral_order(roots @ roots.T), (
            "spectral ordering by row similarity (scipy is not installed)"
        )
    distances = pdist(roots, "euclidean") / np.sqrt(2.0)  # Hellinger
    tree = linkage(distances, method="average", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)], (
        "hierarchical clustering (average linkage, Hellinger distance between rows)"
    )


def _spectral_order(similar: np.ndarray) -> list[int]:
    affinity = similar.copy()
    np.fill_diagonal(affinity, 0.0)
    affinity += 1e-9  # keeps the graph connected, so the order is defined
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    _, vectors = np.linalg.eigh(laplacian)
    return [int(i) for i in np.argsort(vectors[:, 1], kind="stable")]


def confusion_panel(
    page: Page, matrix: np.ndarray, labels: Sequence[str] | None, trial_number: int
) -> list[Html]:
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        return [note(f"The confusion matrix has shape {counts.shape}; expected square.")]
    n = counts.shape[0]
    names = [str(x) for x in labels] if labels is not None and len(labels) == n else None
    names = names or [str(i) for i in range(n)]
    order, method = cluster_order(counts)
    rates = row_shares(counts)
    accuracy = float(np.trace(counts) / counts.sum()) if counts.sum() else 0.0

    def build() -> Any:
        import plotly.graph_objects as go

        ordered = [names[i] for i in order]
        fig = go.Figure(
            go.Heatmap(
                z=rates[np.ix_(order, order)],
                x=ordered,
                y=ordered,
                customdata=counts[np.ix_(order, order)],
                colorscale="Blues",
                zmin=0.0,
                zmax=1.0,
                colorbar={"title": {"text": "share of row"}},
                hovertemplate=(
                    "true %{y}, predicted %{x}<br>%{z:.1%} (%{customdata} samples)<extra></extra>"
                ),
            )
        )
        size = int(min(900, max(420, 12 * n + 160)))
        return fig.update_layout(
            title=f"Confusion matrix of trial #{trial_number}, clustered",
            xaxis={"title": "predicted", "tickangle": -90, "automargin": True},
            yaxis={"title": "true", "autorange": "reversed", "automargin": True},
            width=size + 120,
            height=size,
        )

    text = (
        f"{n} classes, accuracy {accuracy:.1%} (chance {1 / n:.1%}); rows: true class, "
        f"normalised. Order: {method}."
    )
    size = int(min(900, max(420, 12 * n + 160)))
    return [note(text), page.draw("confusion matrix", build, size)]
