"""The GAN's panels: generated maps, and their power spectrum against held-out maps.

A GAN is judged by physics, not by its loss (Mustafa et al. 2017): the generated
convergence maps must have the power spectrum of real ones. Maps are shrunk by block
means to at most ``MAP_PIXELS`` a side, which keeps four 256 x 256 maps under 300 kB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from supervisor.report.page import Html, Page, note

MAPS_SHOWN = 4
MAP_PIXELS = 128


def shrink(image: np.ndarray, pixels: int = MAP_PIXELS) -> np.ndarray:
    """Block means, so that neither side exceeds ``pixels`` (the cut edge is dropped)."""
    factor = int(np.ceil(max(image.shape) / pixels))
    if factor <= 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3))


def _as_maps(samples: np.ndarray) -> np.ndarray:
    maps = np.asarray(samples, dtype=np.float32)
    if maps.ndim == 4 and maps.shape[-1] == 1:  # [n, H, W, 1], channels last
        maps = maps[..., 0]
    return maps[None] if maps.ndim == 2 else maps


def maps_panel(
    page: Page, samples: np.ndarray, validation: np.ndarray | None, trial_number: int
) -> list[Html]:
    """Generated maps in a row; held-out (validation) maps in a row under them, if saved."""
    rows = {"generated": _as_maps(samples)}
    if validation is not None:
        rows["held-out"] = _as_maps(validation)
    for name, maps in rows.items():
        if maps.ndim != 3 or maps.shape[0] == 0:
            return [note(f"The {name} maps have shape {maps.shape}; expected [n, H, W].")]
    shown = {name: [shrink(m) for m in maps[:MAPS_SHOWN]] for name, maps in rows.items()}
    # One colour scale for all: generated and real maps must be comparable at a glance.
    pixels = np.concatenate([np.ravel(m) for images in shown.values() for m in images])
    low, high = (float(v) for v in np.nanpercentile(pixels, [1, 99]))
    cols = max(len(images) for images in shown.values())

    def build() -> Any:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        titles = [
            f"{name} {i}" if i < len(shown[name]) else "" for name in shown for i in range(cols)
        ]
        fig = make_subplots(
            rows=len(shown),
            cols=cols,
            subplot_titles=titles,
            horizontal_spacing=0.02,
            vertical_spacing=0.08,
        )
        for r, images in enumerate(shown.values()):
            for c, image in enumerate(images):
                fig.add_trace(
                    go.Heatmap(
                        z=image,
                        coloraxis="coloraxis",
                        hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>",
                    ),
                    row=r + 1,
                    col=c + 1,
                )
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
        fig.update_yaxes(
            showticklabels=False, showgrid=False, zeroline=False, autorange="reversed"
        )
        for i in range(1, len(shown) * cols + 1):  # square pixels: each y axis follows its x
            suffix = "" if i == 1 else str(i)
            fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
        return fig.update_layout(
            title=f"Maps of trial #{trial_number}",
            coloraxis={"colorscale": "Viridis", "cmin": low, "cmax": high},
        )

    n, h, w = rows["generated"].shape
    size = shown["generated"][0].shape
    at = f", shown at {size[0]} x {size[1]}" if size != (h, w) else ""
    held = " over held-out ones" if "held-out" in rows else ""
    text = (
        f"{len(shown['generated'])} of {n} generated maps ({h} x {w}{at}){held}; one colour "
        "scale, clipped to the 1st-99th percentile."
    )
    return [note(text), page.draw("generated maps", build, 300 * len(shown) + 60)]


def histogram_panel(
    page: Page,
    edges: np.ndarray,
    generated: np.ndarray,
    validation: np.ndarray | None,
    trial_number: int,
) -> list[Html]:
    """Pixel-intensity densities (one value per bin between ``edges``)."""
    edges = np.asarray(edges, dtype=np.float64).ravel()
    curves = {"generated": np.asarray(generated, dtype=np.float64).ravel()}
    if validation is not None:
        curves["held-out"] = np.asarray(validation, dtype=np.float64).ravel()
    for name, values in curves.items():
        if values.size != edges.size - 1:
            return [note(f"Histogram {name} has {values.size} bins; edges give {edges.size - 1}.")]
    colours = {"generated": "#cf222e", "held-out": "#0969da"}

    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, values in curves.items():
            fig.add_trace(
                go.Scatter(
                    x=edges,
                    y=np.append(values, values[-1]),
                    mode="lines",
                    line={"shape": "hv", "color": colours[name]},
                    name=name,
                )
            )
        return fig.update_layout(
            title=f"Pixel intensities of trial #{trial_number}",
            xaxis_title="pixel value",
            yaxis={"title": "density", "type": "log"},
        )

    return [note("Pixel-intensity histogram (densities)."), page.draw("histogram", build, 380)]


def spectra_panel(
    page: Page,
    k: np.ndarray,
    generated: np.ndarray,
    heldout: np.ndarray | None,
    trial_number: int,
) -> list[Html]:
    """Spectra as 1-D arrays over ``k``, or [maps, k] arrays drawn as median and 16-84% band."""
    k = np.asarray(k, dtype=np.float64).ravel()
    curves = {"generated": np.asarray(generated, dtype=np.float64)}
    if heldout is not None:
        curves["held-out"] = np.asarray(heldout, dtype=np.float64)
    for name, values in curves.items():
        if values.shape[-1] != k.size or values.ndim > 2:
            return [note(f"Power spectrum {name} has shape {values.shape}; k has {k.size}.")]
    colours = {"generated": (207, 34, 46), "held-out": (9, 105, 218)}  # #cf222e, #0969da

    def build() -> Any:
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, values in curves.items():
            red, green, blue = colours[name]
            colour = f"rgb({red},{green},{blue})"
            if values.ndim == 2:
                low, mid, high = np.percentile(values, [16, 50, 84], axis=0)
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([k, k[::-1]]),
                        y=np.concatenate([high, low[::-1]]),
                        fill="toself",
                        # The same colour, 20% opaque; rgba(): plotly < 7 refuses '#cf222e33'.
                        fillcolor=f"rgba({red},{green},{blue},0.2)",
                        line={"width": 0},
                        name=f"{name}: 16-84% of {values.shape[0]} maps",
                        hoverinfo="skip",
                    )
                )
                values = mid
            fig.add_trace(
                go.Scatter(x=k, y=values, mode="lines", name=name, line={"color": colour})
            )
        return fig.update_layout(
            title=f"Power spectrum of trial #{trial_number}",
            xaxis={"title": "k", "type": "log"},
            yaxis={"title": "P(k)", "type": "log"},
        )

    text = "2-D power spectrum of generated maps" + (
        " against held-out maps." if heldout is not None else "."
    )
    return [note(text), page.draw("power spectrum", build, 450)]
