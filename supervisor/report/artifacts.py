"""Benchmark panels, drawn from the arrays the best trial saved (``Benchmark.artifacts()``).

The worker saves them to ``<run_dir>/trials/<number, 6 digits>/artifacts.npz`` and records
that path, relative to the run directory, in the trial's ``artifacts`` user attribute. A
panel is drawn when its arrays are there, whatever the benchmark:

- ``confusion`` or ``confusion_matrix`` ([n, n] counts; class names from ``labels`` or
  ``class_names``, else the benchmark class's ``class_names``): the clustered confusion
  matrix (speech decoder);
- ``samples`` ([n, H, W]) and optionally ``validation_samples``: generated and held-out
  maps; ``ps_k`` with ``ps_generated`` and optionally ``ps_heldout``/``ps_validation``
  (1-D, or [maps, k]): power spectra; ``hist_edges`` with ``hist_generated`` and
  optionally ``hist_validation``: pixel-intensity histograms (GAN);
- ``signal`` with ``reference`` and ``decoded`` (text, or integers into ``alphabet``,
  default "ACGT"): a squiggle and its reads (basecaller).

Arrays with no panel are listed by name, type and shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.report.page import Html, Page, kv_table, note

if TYPE_CHECKING:
    import numpy as np
    from optuna.trial import FrozenTrial

    from supervisor.report.campaign import Campaign

logger = logging.getLogger(__name__)

CANDIDATES = 50  # best trials looked at for saved artifacts
Section = tuple[str, str, list[Html]]


def load(run_dir: Path, relative: object) -> dict[str, np.ndarray] | None:
    """The arrays of one trial, or None where the file is missing, unreadable or outside."""
    from supervisor.benchmarks.checkpoint import load_npz

    if not isinstance(relative, str) or not relative:
        return None
    root = run_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        # No pickles: a run directory may be shared, and loading one would run its code.
        return load_npz(path)
    except (OSError, ValueError) as exc:
        logger.warning("report: cannot read %s: %s", path, exc)
        return None


def best_with_artifacts(camp: Campaign) -> tuple[FrozenTrial, dict[str, np.ndarray]] | None:
    """The best complete trial (by the first objective, of those that keep the
    constraints) whose artifacts can be read."""
    if camp.run_dir is None:
        return None
    for trial in camp.feasible[:CANDIDATES]:
        arrays = load(camp.run_dir, camp.record(trial).artifacts)
        if arrays:
            return trial, arrays
    return None


def panels(camp: Campaign, page: Page) -> list[Section]:
    found = best_with_artifacts(camp)
    if found is None:
        return []
    trial, arrays = found
    number = trial.number
    best = camp.feasible[0].number
    whose = f"Trial #{number}" + (
        " (the best)" if number == best else f" (the best with artifacts; #{best} has none)"
    )
    sections: list[Section] = []
    used: set[str] = set()

    def take(*names: str) -> np.ndarray | None:
        """The first of ``names`` saved (benchmarks name the same thing differently)."""
        for name in names:
            if name in arrays:
                used.add(name)
                return arrays[name]
        return None

    confusion = take("confusion", "confusion_matrix")
    if confusion is not None:
        from supervisor.report.speech import confusion_panel

        labels = take("labels", "class_names")
        body = _guarded(
            "confusion matrix",
            lambda: confusion_panel(page, confusion, _labels(camp, labels), number),
        )
        sections.append(("confusion", "Confusion matrix", [note(whose), *body]))
    samples = take("samples")
    k, spectrum = take("ps_k"), take("ps_generated")
    edges, histogram = take("hist_edges"), take("hist_generated")
    if samples is not None or spectrum is not None or histogram is not None:
        from supervisor.report import gan

        body = []
        if samples is not None:
            real = take("validation_samples")
            body += _guarded("generated maps", lambda: gan.maps_panel(page, samples, real, number))
        if k is not None and spectrum is not None:
            held = take("ps_heldout", "ps_validation")
            body += _guarded(
                "power spectra", lambda: gan.spectra_panel(page, k, spectrum, held, number)
            )
        if edges is not None and histogram is not None:
            held_hist = take("hist_heldout", "hist_validation")
            body += _guarded(
                "intensity histograms",
                lambda: gan.histogram_panel(page, edges, histogram, held_hist, number),
            )
        sections.append(("maps", "Generated maps", [note(whose), *body]))
    signal = take("signal")
    if signal is not None:
        reference, decoded, codes = take("reference"), take("decoded"), take("alphabet")
        body = _guarded(
            "squiggle", lambda: _squiggle(page, signal, reference, decoded, codes, number)
        )
        sections.append(("squiggle", "Squiggle and read", [note(whose), *body]))
    rest = sorted(set(arrays) - used)
    if rest:
        rows = [(name, f"{arrays[name].dtype} {list(arrays[name].shape)}") for name in rest]
        title = "Other artifacts" if sections else "Artifacts"
        sections.append(
            ("artifacts", title, [note(f"{whose}: arrays with no panel."), kv_table(rows)])
        )
    return sections


def _guarded(what: str, draw: Callable[[], list[Html]]) -> list[Html]:
    """A panel, or a note where its arrays are not what it reads (text where numbers
    belong, an alphabet of floats): a benchmark's odd artifact cost the whole report,
    the search's too, outside the figures' own guard (``Page.draw``)."""
    try:
        return draw()
    except Exception as exc:
        logger.warning("report: could not draw the %s: %s: %s", what, type(exc).__name__, exc)
        return [note(f"Could not draw the {what}: {type(exc).__name__}: {str(exc)[:300]}")]


def _squiggle(
    page: Page,
    signal: np.ndarray,
    reference: np.ndarray | None,
    decoded: np.ndarray | None,
    codes: np.ndarray | None,
    number: int,
) -> list[Html]:
    from supervisor.report.basecaller import DEFAULT_ALPHABET, as_read, squiggle_panel

    alphabet = DEFAULT_ALPHABET if codes is None else as_read(codes)
    return squiggle_panel(page, signal, reference, decoded, alphabet, number)


def _labels(camp: Campaign, saved: np.ndarray | None) -> Sequence[str] | None:
    """Class names saved with the matrix, else the benchmark's ``class_names``."""
    if saved is not None:
        return [str(x) for x in saved.ravel().tolist()]
    bench = camp.config.get("benchmark")
    name = bench.get("name") if isinstance(bench, dict) else None
    if not isinstance(name, str):
        return None
    try:
        from supervisor.benchmarks import registry

        names: Any = getattr(registry.load(name), "class_names", None)
    except Exception:  # a benchmark that cannot be imported here still gets its panel
        return None
    return [str(x) for x in names] if isinstance(names, (list, tuple)) else None
