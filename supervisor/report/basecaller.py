"""The basecaller's panel: a squiggle (raw current) with its reference and decoded read.

The two reads are aligned with difflib (matching blocks; a stand-in for the edit-distance
alignment the identity metric uses, good enough to show where the basecaller errs):
mismatches are marked, gaps written as '-'.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from supervisor.report.page import Html, Page, esc, note

SIGNAL_SAMPLES = 5000  # the start of a longer squiggle
READ_BASES = 2000
LINE = 100  # bases per line of the alignment
DEFAULT_ALPHABET = "ACGT"  # integer reads index this unless the artifacts hold "alphabet"


def as_read(value: Any, alphabet: str = DEFAULT_ALPHABET) -> str:
    """A read saved as a string (0-d or 1-d array of str) or as integers into ``alphabet``."""
    array = np.asarray(value)
    if array.dtype.kind in "US":
        items = array.ravel().tolist()
        return "".join(x.decode() if isinstance(x, bytes) else str(x) for x in items)
    if array.dtype.kind in "iu":
        codes = array.ravel()
        if codes.size and (codes.min() < 0 or codes.max() >= len(alphabet)):
            raise ValueError(f"base codes {codes.min()}..{codes.max()} outside {alphabet!r}")
        return "".join(alphabet[int(c)] for c in codes)
    raise ValueError(f"a read must be text or integers, not {array.dtype}")


def align(reference: str, decoded: str) -> tuple[str, str, str, int]:
    """Two gapped rows, a marker row ('|' match, ' ' otherwise) and the matching bases."""
    top, bottom, marks = [], [], []
    matcher = difflib.SequenceMatcher(None, reference, decoded, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        a, b = reference[i1:i2], decoded[j1:j2]
        width = max(len(a), len(b))
        top.append(a.ljust(width, "-"))
        bottom.append(b.ljust(width, "-"))
        marks.append(("|" if op == "equal" else " ") * width)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return "".join(top), "".join(bottom), "".join(marks), matched


def _alignment_html(reference: str, decoded: str) -> Html:
    top, bottom, marks, _ = align(reference, decoded)
    lines = []
    for start in range(0, len(top), LINE):
        end = start + LINE
        ref = _marked(top[start:end], marks[start:end])
        dec = _marked(bottom[start:end], marks[start:end])
        lines.append(f"ref {start:>6} {ref}\nout {start:>6} {dec}\n")
    return Html('<pre class="alignment">' + "\n".join(lines) + "</pre>")


def _marked(row: str, marks: str) -> str:
    """Escaped text; runs of mismatches wrapped in <mark>."""
    out, i = [], 0
    while i < len(row):
        j = i
        same = marks[i] == "|"
        while j < len(row) and (marks[j] == "|") == same:
            j += 1
        text = esc(row[i:j])
        out.append(text if same else f"<mark>{text}</mark>")
        i = j
    return "".join(out)


def squiggle_panel(
    page: Page,
    signal: np.ndarray,
    reference: Any,
    decoded: Any,
    alphabet: str,
    trial_number: int,
) -> list[Html]:
    values = np.asarray(signal, dtype=np.float32).ravel()
    shown = values[:SIGNAL_SAMPLES]

    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Scatter(
                x=np.arange(shown.size),
                y=shown,
                mode="lines",
                line={"width": 1, "color": "#0969da"},
                hovertemplate="sample %{x}: %{y:.3g}<extra></extra>",
            )
        )
        return fig.update_layout(
            title=f"Squiggle of trial #{trial_number}",
            xaxis_title="sample",
            yaxis_title="current (normalised)",
            showlegend=False,
        )

    cut = f" (the first {SIGNAL_SAMPLES} of {values.size})" if values.size > shown.size else ""
    out = [note(f"Raw signal, {shown.size} samples{cut}."), page.draw("squiggle", build, 340)]
    reads: dict[str, str] = {}
    for name, value in (("reference", reference), ("decoded", decoded)):
        if value is None:
            continue
        try:
            reads[name] = as_read(value, alphabet)[:READ_BASES]
        except ValueError as exc:
            out.append(note(f"The {name} read cannot be shown: {exc}"))
    if "reference" in reads and "decoded" in reads:
        ref, dec = reads["reference"], reads["decoded"]
        matched = align(ref, dec)[3]
        share = matched / len(ref) if ref else 0.0
        out.append(
            note(
                f"Reference ({len(ref)} bases) over the decoded read ({len(dec)} bases): "
                f"{matched} bases match in order ({share:.1%} of the reference); "
                "differences are highlighted."
            )
        )
        out.append(_alignment_html(ref, dec))
    else:
        for name, read in reads.items():
            out.append(Html(f'<h3>{esc(name)} read</h3><pre class="alignment">{esc(read)}</pre>'))
    return out
