"""The Embedding map drawn by deck.gl (``st.pydeck_chart``): every point of a big split in one
WebGL layer, where the plotly map draws a sample over a density (``embedding_map.map_figure``).

Which one the page draws is ``use_deck``'s call; benchmarks/map_paint.py measures both."""

from __future__ import annotations

import json
import weakref
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from dmlviz.views.embedding_map import COLOR_OPTIONS, MAX_MAP_POINTS
from dmlviz.views.style import CLEAN, NOISY, class_color

POINTS_LAYER = "points"  # the layer id whose picks are samples (Streamlit's selection key)
LENS_LAYER = "lens"
_WIDTH_PX = 900  # about the map's width on the page: the first view fits the points into it
_SCORE_SCALE = plotly.colors.diverging.RdYlGn  # red (0) to green (1), as the plotly map's
_NO_SCORE = (187, 187, 187)


class CompactDeck(pdk.Deck):
    """A ``pydeck.Deck`` whose JSON (what ``st.pydeck_chart`` sends on every rerun) is compact
    (pydeck's own indents every record: 3x the bytes) and reuses each layer's JSON once made, so
    that a page keeping its big points layer (``st.cache_resource``) serialises it once."""

    def to_json(self) -> str:
        spec = {key: value for key, value in default_serialize(self).items() if key != "layers"}
        head = json.dumps(spec, default=default_serialize, separators=(",", ":"))
        layers = ",".join(_layer_json(layer) for layer in self.layers)
        return f'{head[:-1]},"layers":[{layers}]}}'  # the layers spliced in as the last key


_LAYER_JSON: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layer_json(layer: pdk.Layer) -> str:
    """``layer`` as compact JSON, made once per layer object."""
    if layer not in _LAYER_JSON:
        _LAYER_JSON[layer] = json.dumps(layer, default=default_serialize, separators=(",", ":"))
    return _LAYER_JSON[layer]


def use_deck(n: int, max_points: int = MAX_MAP_POINTS) -> bool:
    """Whether a map of ``n`` samples is drawn by deck.gl (every point) rather than plotly: only
    where plotly would draw a sample (more than ``max_points``)."""
    return n > max_points


def every_point_note(n: int) -> str:
    """What the deck.gl map shows and lacks."""
    return (
        f"Drawn: all {n:,} images. Hover a point to name it, click it to make it the lens's query; "
        'a lasso or box needs the sampled map (switch off "Draw all points").'
    )


def deck_points(frame: pd.DataFrame, color_by: str = "label") -> pd.DataFrame:
    """What deck.gl draws of a ``map_frame``: one row per sample with ``i`` (its index), ``x``,
    ``y`` (rounded to 1e-3 of the map's extent), ``c`` ([r, g, b]) and ``t`` (the tooltip's second
    line), coloured as ``map_figure`` colours ``color_by``. Short names and rounding keep the
    JSON short: every row is sent as a JSON object."""
    if color_by not in COLOR_OPTIONS or color_by not in frame:
        color_by = "label"
    kind = COLOR_OPTIONS[color_by][1]
    x, y = frame["x"].to_numpy(np.float64), frame["y"].to_numpy(np.float64)
    decimals = _decimals(max(np.ptp(x), np.ptp(y)) if len(frame) else 1.0)
    if kind == "category":
        rgb, text = _category_colors(frame, color_by)
    elif kind == "flag":
        flipped = frame["flipped"].to_numpy(dtype=bool)
        rgb = np.where(flipped[:, None], _rgb(NOISY), _rgb(CLEAN))
        text = np.where(flipped, "label flipped", "label kept")
    else:
        rgb, text = _score_colors(frame[color_by].to_numpy(dtype=float), COLOR_OPTIONS[color_by][0])
    return pd.DataFrame(
        {
            "i": frame["index"].to_numpy(),
            "x": x.round(decimals),
            "y": y.round(decimals),
            "c": rgb.astype(np.uint8).tolist(),
            "t": text,
        }
    )


def points_layer(frame: pd.DataFrame, color_by: str = "label") -> pdk.Layer:
    """Every sample of a ``map_frame`` as one pickable ``ScatterplotLayer`` (id ``POINTS_LAYER``,
    rows of ``deck_points``): the big part of the map, which a page keeps across reruns."""
    return pdk.Layer(
        "ScatterplotLayer",
        id=POINTS_LAYER,
        data=deck_points(frame, color_by),
        get_position=["x", "y"],
        get_fill_color="c",
        get_radius=2,
        radius_units="'pixels'",
        opacity=0.8,
        pickable=True,  # no auto_highlight: a redraw of every point on each hover
    )


def deck_chart(
    frame: pd.DataFrame,
    points: pdk.Layer,
    query: int | None = None,
    neighbours: list[int] | None = None,
    height: int = 620,
) -> CompactDeck:
    """The map of a ``map_frame``: its ``points_layer`` in a flat ``OrthographicView`` fitted to
    the samples, a tooltip naming the sample under the mouse, and the lens ``query`` as a yellow
    dot with its ``neighbours`` as rings (layer ``LENS_LAYER``, not pickable, so that a click
    always picks a sample)."""
    layers = [points]
    lens = _lens_points(frame, query, neighbours or [])
    if lens is not None:
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                id=LENS_LAYER,
                data=lens,
                get_position=["x", "y"],
                get_fill_color="fill",
                get_line_color=[34, 34, 34],
                get_radius="radius",
                radius_units="'pixels'",
                stroked=True,
                line_width_min_pixels=2,
                pickable=False,
            )
        )
    return CompactDeck(
        layers=layers,
        views=[pdk.View("OrthographicView", controller=True, flip_y=False)],  # y up, as plotly
        initial_view_state=fitted_view(frame, height),
        map_provider=None,
        map_style=None,
        tooltip={"text": "sample {i}\n{t}"},
        height=height,
    )


def deck_clicked(event: Any) -> int | None:
    """The sample index a click on the deck.gl map picked (``st.pydeck_chart(on_select=...)``'s
    state, read dict-style: ``selection.objects[POINTS_LAYER][0]["i"]``), None if none."""
    selection = event.get("selection") if hasattr(event, "get") else None
    objects = selection.get("objects") if hasattr(selection, "get") else None
    picked = objects.get(POINTS_LAYER) if hasattr(objects, "get") else None
    if not picked or not hasattr(picked[0], "get") or picked[0].get("i") is None:
        return None
    return int(picked[0]["i"])


def _decimals(extent: float) -> int:
    """Decimal places that keep a thousandth of ``extent``."""
    return max(0, int(np.ceil(3 - np.log10(max(extent, 1e-9)))))


def _rgb(color: str) -> np.ndarray:
    """A ``#rrggbb`` or ``rgb(r, g, b)`` colour as an integer array."""
    if color.startswith("#"):
        return np.array(plotly.colors.hex_to_rgb(color))
    return np.array(plotly.colors.unlabel_rgb(color), dtype=float).round()


def _category_colors(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's class colour (``class_color``, as the plotly map) and class name."""
    classes, codes = np.unique(frame[column].to_numpy(), return_inverse=True)
    palette = np.array([_rgb(class_color(code, len(classes))) for code in classes])
    names = frame["class" if column == "label" else "observed_class"].to_numpy()
    return palette[codes], names


def _score_colors(values: np.ndarray, title: str) -> tuple[np.ndarray, np.ndarray]:
    """A score in [0, 1] on the red-to-green scale (grey where unknown) and the tooltip line."""
    stops = np.array([_rgb(color) for color in _SCORE_SCALE], dtype=float)
    at = np.linspace(0.0, 1.0, len(stops))
    known = ~np.isnan(values)
    clipped = np.clip(np.nan_to_num(values), 0.0, 1.0)
    rgb = np.column_stack([np.interp(clipped, at, stops[:, c]) for c in range(3)]).round()
    rgb[~known] = _NO_SCORE
    label = title.split(" (")[0]
    text = np.where(known, [f"{label} {v:.2f}" for v in np.nan_to_num(values)], "no value")
    return rgb, text


def _lens_points(frame: pd.DataFrame, query: int | None, neighbours: list[int]):
    """The query (a yellow dot, drawn last) and its neighbours (rings), or None without a query."""
    if query is None or not 0 <= query < len(frame):
        return None
    rows = [int(i) for i in neighbours if 0 <= int(i) < len(frame)] + [int(query)]
    part = frame.iloc[rows]
    is_query = np.arange(len(rows)) == len(rows) - 1
    return pd.DataFrame(
        {
            "x": part["x"].to_numpy(np.float64),
            "y": part["y"].to_numpy(np.float64),
            "fill": [[255, 212, 0, 255] if q else [0, 0, 0, 0] for q in is_query],
            "radius": np.where(is_query, 8, 6),
        }
    )


def fitted_view(points: pd.DataFrame, height: int) -> pdk.ViewState:
    """The view centred on the ``x``, ``y`` of ``points``, zoomed so that their extent fills the
    map (in an ``OrthographicView`` a map unit is 2 ** zoom pixels from the canvas's centre)."""
    if points.empty:
        return pdk.ViewState(target=[0, 0, 0], zoom=0)
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    extent = max(np.ptp(x) / _WIDTH_PX, np.ptp(y) / height, 1e-9) * 1.05
    centre = [float((x.min() + x.max()) / 2), float((y.min() + y.max()) / 2), 0.0]
    return pdk.ViewState(target=centre, zoom=float(-np.log2(extent)))
