"""Assembly of one self-contained HTML page: escaping, tables, sections and plotly figures.

Everything that is not already :class:`Html` is escaped on the way in, so a hostile study
name or error message can only ever appear as text. Figure data goes into
``<script type="application/json">`` blocks with ``<``, ``>`` and ``&`` written as JSON
escapes, so no string in the data can end the script element. plotly.js is inlined once,
at the end of the body: the text of the page shows before the 4-5 MB library is parsed,
and the page needs no network (login nodes are often air-gapped).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Html", "Page", "details", "esc", "kv_table", "note", "script_safe", "table"]

logger = logging.getLogger(__name__)


class Html(str):
    """Text that is already HTML: inserted as it is, everything else is escaped."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape any value for use in HTML text or a quoted attribute."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(value if isinstance(value, str) else str(value), quote=True))


_SCRIPT_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")


def script_safe(json_text: str) -> str:
    """Make JSON safe inside a <script> element.

    Outside strings JSON has none of these characters, and inside strings a ``\\u003c``
    style escape means the same, so the data is unchanged while ``</script>`` or ``<!--`` cannot
    occur. plotly's encoder already does this for ``<`` and ``>``; not relying on it keeps
    the page safe whatever plotly version is installed.
    """
    return _SCRIPT_UNSAFE_RE.sub(lambda m: _SCRIPT_UNSAFE[m.group()], json_text)


def note(text: object) -> Html:
    return Html(f'<p class="note">{esc(text)}</p>')


def details(summary: object, body: Html, *, open_: bool = False) -> Html:
    attr = " open" if open_ else ""
    return Html(f"<details{attr}><summary>{esc(summary)}</summary>{body}</details>")


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    css_class: str = "data",
) -> Html:
    """A table; cells that are not :class:`Html` are escaped; ``numeric`` columns align right."""
    right = set(numeric)

    def cell(tag: str, i: int, value: object) -> str:
        cls = ' class="num"' if i in right else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>\n" for row in rows
    )
    return Html(
        f'<div class="scroll"><table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def kv_table(items: Iterable[tuple[object, object]]) -> Html:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>\n" for k, v in items)
    return Html(f'<table class="kv"><tbody>\n{body}</tbody></table>')


_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #fff; }
header { padding: 16px 28px 10px; border-bottom: 1px solid var(--line); background: var(--bg2); }
header h1 { margin: 0 0 4px; font-size: 22px; word-break: break-all; }
header .meta { color: var(--muted); font-size: 13px; }
nav { padding: 6px 28px; border-bottom: 1px solid var(--line); position: sticky; top: 0;
      background: #fff; z-index: 10; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { margin: 22px 0 30px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; font-size: 13px; }
table.data th, table.data td { border: 1px solid var(--line); padding: 3px 8px;
                               vertical-align: top; text-align: left; }
table.data thead th { background: var(--bg2); position: sticky; top: 0; }
table.data tbody tr:nth-child(even) { background: #fbfcfd; }
table.kv th { text-align: left; color: var(--muted); font-weight: normal; padding: 2px 16px 2px 0;
              vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; word-break: break-word; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow: auto; max-height: 640px; }
.note { color: var(--muted); font-style: italic; }
.error { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px;
         white-space: pre-wrap; word-break: break-word; max-width: 70ch; }
pre { background: var(--bg2); padding: 10px; overflow: auto; font-size: 12px; max-height: 500px; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
.figure { width: 100%; min-height: 300px; }
.links { font-size: 15px; }
pre.command { white-space: pre; border-left: 3px solid var(--accent); }
pre.alignment { line-height: 1.3; max-height: none; }
mark { background: #ffd8d3; color: #82071e; }
"""

_LOADER = """
(function () {
  if (typeof Plotly === "undefined") { return; }
  var config = {responsive: true, displaylogo: false};
  document.querySelectorAll('script[type="application/json"][data-figure]').forEach(
    function (node) {
      var spec = JSON.parse(node.textContent);
      Plotly.newPlot(node.getAttribute("data-figure"), spec.data, spec.layout, config);
    });
})();
"""


class Page:
    """Sections and figures of one report, rendered to a single HTML document."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._sections: list[tuple[str, str, Html]] = []
        self._n_figures = 0

    @property
    def n_figures(self) -> int:
        return self._n_figures

    def section(self, anchor: str, title: str, body: Iterable[Html]) -> None:
        self._sections.append((anchor, title, Html("\n".join(body))))

    def figure(self, fig: Any) -> Html:
        """A plotly figure as an empty div plus its data; drawn by the loader script."""
        from plotly.io.json import to_json_plotly

        from supervisor.report.labels import literal_labels

        self._n_figures += 1
        div_id = f"figure-{self._n_figures}"
        _single_precision_grids(fig)
        spec = literal_labels(fig.to_dict())
        traces = [_compact(trace) for trace in spec["data"]]
        data = script_safe(to_json_plotly({"data": traces, "layout": spec["layout"]}))
        return Html(
            f'<div class="figure" id="{div_id}"></div>\n'
            f'<script type="application/json" data-figure="{div_id}">{data}</script>'
        )

    def draw(self, what: str, build: Callable[[], Any], height: int = 450) -> Html:
        """The figure ``build()`` returns, or a short note where it cannot be drawn.

        One figure that Optuna or plotly cannot draw (odd data, a version change) must not
        cost the user the rest of the report.
        """
        try:
            fig = build()
            fig.update_layout(template="plotly_white", height=height)
            return self.figure(fig)
        except Exception as exc:
            logger.warning("report: could not draw the %s: %s: %s", what, type(exc).__name__, exc)
            text = str(exc) if len(str(exc)) <= 300 else str(exc)[:299] + "…"
            return note(f"Could not draw the {what}: {type(exc).__name__}: {text}")

    def render(self, generated: dt.datetime | None = None) -> str:
        generated = generated or dt.datetime.now().astimezone()
        stamp = generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in self._sections)
        sections = "\n".join(
            f'<section id="{esc(a)}">\n<h2>{esc(t)}</h2>\n{body}\n</section>'
            for a, t, body in self._sections
        )
        subtitle = f"{esc(self.subtitle)} · " if self.subtitle else ""
        parts = [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
            f"<header><h1>{esc(self.title)}</h1>\n",
            f'<div class="meta">{subtitle}generated {esc(stamp)}</div></header>\n',
            f"<nav>{nav}</nav>\n<main>\n{sections}\n</main>\n",
        ]
        if self._n_figures:
            parts += [_plotlyjs_script(), f"<script>{_LOADER}</script>\n"]
        parts.append("</body>\n</html>\n")
        return "".join(parts)


# Long lists of numbers in these trace keys are sent as typed arrays: plotly writes numpy
# arrays as base64 ("bdata"), about half the size of their JSON text, and exact.
_ARRAY_KEYS = ("x", "y", "z", "customdata")
_COMPACT_FROM = 64


def _single_precision_grids(fig: Any) -> None:
    """A z grid (contour, heatmap) is drawn as colours: float32 is precise enough."""
    import numpy as np

    for trace in fig.data:
        z = getattr(trace, "z", None)
        if isinstance(z, np.ndarray) and z.dtype == np.float64:
            trace.z = z.astype(np.float32)


def _compact(trace: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    out = dict(trace)
    for key in _ARRAY_KEYS:
        value = out.get(key)
        if not isinstance(value, (list, tuple)) or not value:
            continue
        rows = value if all(isinstance(row, (list, tuple)) for row in value) else None
        cells = [v for row in rows for v in row] if rows is not None else value
        if len(cells) < _COMPACT_FROM:
            continue
        # bool is a number to numpy but a category to plotly; None is a gap in a z grid.
        if not all(
            (isinstance(v, (int, float)) and not isinstance(v, bool)) or (v is None and key == "z")
            for v in cells
        ):
            continue
        if rows is not None and len({len(row) for row in rows}) != 1:
            continue
        # An interpolated z grid (contour) needs no more than float32 precision.
        out[key] = np.array(value, dtype=np.float32 if key == "z" else np.float64)
    return out


def _plotlyjs_script() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # The bundle has no "</script" today; should a future one, it must not end the element
    # early (in JS source "<\/" means the same as "</" wherever it can occur).
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    return f'<script type="text/javascript">/* plotly.js, inlined once */\n{js}\n</script>\n'
