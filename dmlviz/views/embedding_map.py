"""The Embedding map page: a 2-D map of a run's split, coloured by what explains retrieval failures,
and what a click or a lasso on it selects."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dmlviz.views.style import CLASS_COLORS, CLEAN, NOISY, class_color

# What the map can be coloured by: column of ``map_frame`` -> (menu label, kind).
COLOR_OPTIONS: dict[str, tuple[str, str]] = {
    "label": ("class (clean label)", "category"),
    "observed": ("observed label (what the loss saw)", "category"),
    "flipped": ("flipped by label noise", "flag"),
    "ap@r": ("per-query AP@R", "score"),
    "consistency": ("neighbour consistency", "score"),
}
MAX_LEGEND_CLASSES = 30  # above this, classes share one trace (no legend) to keep the map light
# Above this many samples the map draws a seeded sample of them over a density of all (the first
# paint in the browser grows with the points drawn: benchmarks/map_paint.py, docs/performance.md).
MAX_MAP_POINTS = 10_000
DENSITY_BINS = 160  # cells of the density layer along each axis


def map_frame(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    observed: np.ndarray | None = None,
    flipped: np.ndarray | None = None,
    per_query: pd.DataFrame | None = None,
    consistency: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per sample of a split: ``index``, ``x``, ``y``, ``label`` (clean), ``class``; and
    where known ``observed``, ``observed_class``, ``flipped`` (train split of a noisy run),
    ``ap@r`` / ``first_correct_rank`` (from the per-query table) and ``consistency`` (share of the
    k nearest neighbours whose observed label matches the sample's, from the consistency table).

    Tables that do not match the split (other length) are ignored rather than misaligned.
    """
    coords = np.asarray(coords, dtype=np.float32)
    labels = np.asarray(labels)
    n = len(labels)
    if coords.shape != (n, 2):
        raise ValueError(f"the map has {coords.shape} coordinates for {n} samples")
    frame = pd.DataFrame(
        {"index": np.arange(n), "x": coords[:, 0], "y": coords[:, 1], "label": labels}
    )
    frame["class"] = class_names_of(labels, class_names)
    if observed is not None and len(observed) == n:
        frame["observed"] = np.asarray(observed)
        frame["observed_class"] = class_names_of(frame["observed"].to_numpy(), class_names)
    if flipped is not None and len(flipped) == n:
        frame["flipped"] = np.asarray(flipped, dtype=bool)
    if per_query is not None and len(per_query) == n and "ap@r" in per_query:
        ordered = per_query.sort_values("query") if "query" in per_query else per_query
        frame["ap@r"] = ordered["ap@r"].to_numpy(dtype=float)
        if "first_correct_rank" in ordered:
            frame["first_correct_rank"] = ordered["first_correct_rank"].to_numpy(dtype=float)
    if consistency is not None and len(consistency) == n and "consistency_observed" in consistency:
        ordered = consistency.sort_values("index") if "index" in consistency else consistency
        frame["consistency"] = ordered["consistency_observed"].to_numpy(dtype=float)
    return frame


def class_names_of(labels: np.ndarray, class_names: list[str] | None) -> np.ndarray:
    """The display name of each label (the label itself where no name is known)."""
    labels = np.asarray(labels)
    if not class_names:
        return labels.astype(str)
    names = np.asarray([str(n) for n in class_names], dtype=object)
    inside = (labels >= 0) & (labels < len(names))
    out = labels.astype(str).astype(object)
    out[inside] = names[labels[inside]]
    return out


def color_options(frame: pd.DataFrame) -> list[str]:
    """The ``COLOR_OPTIONS`` keys this frame can be coloured by (its columns with values)."""
    return [key for key in COLOR_OPTIONS if key in frame and frame[key].notna().any()]


def default_color(frame: pd.DataFrame) -> str:
    """What the map is coloured by at first: flipped labels where some were, else the class."""
    return "flipped" if "flipped" in frame and frame["flipped"].any() else "label"


def map_figure(
    frame: pd.DataFrame,
    color_by: str = "label",
    query: int | None = None,
    neighbours: list[int] | None = None,
    title: str | None = None,
    height: int = 620,
    max_points: int | None = MAX_MAP_POINTS,
) -> go.Figure:
    """The map as WebGL scatter traces (``go.Scattergl``), each point's sample index in
    ``customdata[0]`` so selections map back to samples.

    A frame of more than ``max_points`` rows (None: no limit) is drawn as a seeded sample of
    ``max_points`` of them (``shown_rows``) over a grey density heatmap of all of them, which
    takes no hover or clicks; legend counts are those of all samples, and ``region_indices``
    turns a lasso or box into every sample inside it, drawn or not.

    ``color_by`` is a ``COLOR_OPTIONS`` key: categories get one trace per class (a legend entry
    each, up to ``MAX_LEGEND_CLASSES``), the flipped flag two traces (flipped drawn on top, larger),
    scores one trace on a red-to-green scale. ``query`` (a sample index) is drawn as a star and its
    ``neighbours`` as rings: the query lens's current list, linked to the map. The drag mode is
    left to Streamlit: pan, so that a click selects a point; lasso and box are in the toolbar.
    """
    if color_by not in COLOR_OPTIONS or color_by not in frame:
        color_by = "label"
    kind = COLOR_OPTIONS[color_by][1]
    figure = go.Figure()
    drawn = frame
    if max_points is not None and len(frame) > max_points:
        figure.add_trace(_density_trace(frame))
        drawn = frame.iloc[shown_rows(len(frame), max_points)]
    if kind == "category":
        _category_traces(figure, drawn, color_by, np.unique(frame[color_by].to_numpy()))
    elif kind == "flag":
        _flag_traces(figure, drawn, frame["flipped"].to_numpy(dtype=bool))
    else:
        _score_trace(figure, drawn, color_by)
    if query is not None and 0 <= query < len(frame):
        _lens_traces(figure, frame, int(query), neighbours or [])
    figure.update_layout(
        title=title,
        height=height,
        margin=dict(l=0, r=0, t=40 if title else 34, b=0),
        hovermode="closest",
        legend=dict(itemsizing="constant", title=COLOR_OPTIONS[color_by][0]),
        plot_bgcolor="white",
        uirevision="map",  # keep zoom and pan across reruns
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return figure


def shown_rows(n: int, max_points: int) -> np.ndarray:
    """The rows a map of ``n`` samples draws: all of them up to ``max_points``, else a seeded
    uniform sample of ``max_points`` rows in increasing order (the same one on every rerun)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))


def sample_note(n: int, max_points: int = MAX_MAP_POINTS) -> str | None:
    """What a decimated map shows (None when it draws every sample)."""
    if n <= max_points:
        return None
    return (
        f"Drawn: a random {max_points:,} of the {n:,} images, over the grey density of all of "
        "them. Hover and click work on the drawn points; a lasso or box selects every image "
        "inside it, drawn or not."
    )


def _density_trace(frame: pd.DataFrame) -> go.Heatmap:
    """A grey heatmap of how many samples fall in each cell (log scale, empty cells blank)."""
    counts, x_edges, y_edges = np.histogram2d(frame["x"], frame["y"], bins=DENSITY_BINS)
    z = np.log1p(counts.T).astype(np.float32)
    z[counts.T == 0] = np.nan
    return go.Heatmap(
        x=((x_edges[:-1] + x_edges[1:]) / 2).astype(np.float32),
        y=((y_edges[:-1] + y_edges[1:]) / 2).astype(np.float32),
        z=z,
        colorscale=[[0.0, "#e6e6e6"], [1.0, "#6b6b6b"]],
        showscale=False,
        hoverinfo="skip",
        name=f"density of all {len(frame):,}",
    )


def _marker_size(n: int) -> float:
    """Smaller points for bigger maps: 7 px at a few hundred points, 3 px at 50k."""
    return float(np.clip(11 - 0.75 * np.log(max(n, 1)), 3, 8))


def _customdata(part: pd.DataFrame) -> np.ndarray:
    return part[["index"]].to_numpy(dtype=np.int32)


_HOVER = "sample %{customdata[0]}<br>%{fullData.name}<extra></extra>"


def _category_traces(
    figure: go.Figure, frame: pd.DataFrame, column: str, classes: np.ndarray
) -> None:
    """The drawn ``frame`` by class; ``classes`` (of all samples) fix the colours and legend."""
    names_column = "class" if column == "label" else "observed_class"
    size = _marker_size(len(frame))
    codes = frame[column].to_numpy()
    if len(classes) > MAX_LEGEND_CLASSES:
        # one trace, colour = class code through a stepped colour scale (a numeric array is
        # ~500x cheaper for plotly to validate and send than one colour string per point)
        palette = CLASS_COLORS
        steps = [
            [position, color]
            for i, color in enumerate(palette)
            for position in (i / len(palette), (i + 1) / len(palette))
        ]
        figure.add_trace(
            go.Scattergl(
                x=frame["x"].to_numpy(),
                y=frame["y"].to_numpy(),
                mode="markers",
                marker=dict(
                    size=size,
                    color=(np.asarray(codes) % len(palette)).astype(np.int16),
                    colorscale=steps,
                    cmin=-0.5,
                    cmax=len(palette) - 0.5,
                    opacity=0.8,
                ),
                name=f"{len(classes)} classes",
                customdata=_customdata(frame),
                text=frame[names_column].to_numpy(),
                hovertemplate="sample %{customdata[0]}<br>%{text}<extra></extra>",
                showlegend=False,
            )
        )
        return
    for code in classes:
        part = frame[codes == code]
        if part.empty:  # a class the sample missed
            continue
        figure.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                marker=dict(size=size, color=class_color(code, len(classes)), opacity=0.8),
                name=str(part[names_column].iloc[0]),
                customdata=_customdata(part),
                hovertemplate=_HOVER,
            )
        )


def _flag_traces(figure: go.Figure, frame: pd.DataFrame, all_flags: np.ndarray) -> None:
    """Kept and flipped labels of the drawn ``frame``; the legend counts ``all_flags``."""
    size = _marker_size(len(frame))
    flags = frame["flipped"].to_numpy(dtype=bool)
    for flag, name, color, scale in (
        (False, "label kept", CLEAN, 1.0),
        (True, "label flipped", NOISY, 1.15),
    ):
        part = frame[flags == flag]
        count = int((all_flags == flag).sum())
        figure.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                marker=dict(size=size * scale, color=color, opacity=0.5 if not flag else 0.85),
                name=f"{name} ({count})",
                customdata=_customdata(part),
                hovertemplate=_HOVER,
            )
        )


def _score_trace(figure: go.Figure, frame: pd.DataFrame, column: str) -> None:
    values = frame[column].to_numpy(dtype=float)
    known = ~np.isnan(values)
    title = COLOR_OPTIONS[column][0]
    if (~known).any():
        part = frame[~known]
        figure.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                marker=dict(size=_marker_size(len(frame)), color="#bbbbbb", opacity=0.5),
                name="no value",
                customdata=_customdata(part),
                hovertemplate=_HOVER,
            )
        )
    part = frame[known]
    data = np.column_stack([part["index"].to_numpy(), values[known]])
    figure.add_trace(
        go.Scattergl(
            x=part["x"].to_numpy(),
            y=part["y"].to_numpy(),
            mode="markers",
            marker=dict(
                size=_marker_size(len(frame)),
                color=values[known],
                colorscale="RdYlGn",
                cmin=0.0,
                cmax=1.0,
                opacity=0.85,
                colorbar=dict(title=dict(text=title.split(" (")[0], side="right"), thickness=14),
            ),
            name=title,
            customdata=data,
            showlegend=False,
            hovertemplate="sample %{customdata[0]:.0f}<br>"
            + title
            + " %{customdata[1]:.2f}<extra></extra>",
        )
    )


def _lens_traces(figure: go.Figure, frame: pd.DataFrame, query: int, neighbours: list[int]) -> None:
    neighbours = [int(i) for i in neighbours if 0 <= int(i) < len(frame)]
    if neighbours:
        part = frame.iloc[neighbours]
        figure.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                marker=dict(size=12, color="rgba(0,0,0,0)", line=dict(color="#222", width=2)),
                name="its top-K neighbours",
                customdata=_customdata(part),
                hovertemplate=_HOVER,
            )
        )
    row = frame.iloc[query]
    figure.add_trace(
        go.Scattergl(
            x=[row["x"]],
            y=[row["y"]],
            mode="markers",
            marker=dict(
                size=20, symbol="star", color="#ffd400", line=dict(color="#222", width=1.5)
            ),
            name="lens query",
            customdata=[[int(query)]],
            hovertemplate=_HOVER,
        )
    )


def selected_indices(event: Any, frame: pd.DataFrame | None = None) -> list[int]:
    """Sample indices selected on the map, from the ``st.plotly_chart(on_select=...)`` event.

    The event is read dict-style (it is a plain dict when injected through ``session_state`` in
    tests); each point's ``customdata[0]`` is the sample index (the browser sends a row of a
    numpy ``customdata`` as ``{"0": index}``). Order is kept, duplicates dropped. Given the map's
    ``frame``, a box or lasso selects every sample inside it (``region_indices``), also those a
    decimated map does not draw.
    """
    if not event:
        return []
    selection = event.get("selection", {}) if hasattr(event, "get") else {}
    if not hasattr(selection, "get"):
        return []
    if frame is not None and (selection.get("box") or selection.get("lasso")):
        return region_indices(frame, selection.get("box") or [], selection.get("lasso") or [])
    points = selection.get("points", [])
    found: list[int] = []
    for point in points or []:
        data = point.get("customdata") if hasattr(point, "get") else None
        if isinstance(data, dict):  # a typed-array row reaches Python as {"0": value, ...}
            data = data.get("0", next(iter(data.values()), None))
        elif isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is None:
            continue
        try:
            found.append(int(round(float(data))))
        except (TypeError, ValueError):
            continue
    return list(dict.fromkeys(found))


def region_indices(frame: pd.DataFrame, boxes: list[Any], lassos: list[Any]) -> list[int]:
    """The sample indices (ascending) of ``frame`` inside any of the selected regions: ``boxes``
    ``{"x": [x0, x1], "y": [y0, y1]}`` and ``lassos`` ``{"x": [...], "y": [...]}`` (a polygon's
    corners), in map coordinates, as Streamlit reports a plotly box or lasso selection."""
    x = frame["x"].to_numpy(dtype=np.float64)
    y = frame["y"].to_numpy(dtype=np.float64)
    inside = np.zeros(len(frame), dtype=bool)
    for box in boxes:
        (x0, x1), (y0, y1) = sorted(box["x"]), sorted(box["y"])
        inside |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    for lasso in lassos:
        inside |= _in_polygon(x, y, np.asarray(lasso["x"], float), np.asarray(lasso["y"], float))
    return [int(i) for i in frame["index"].to_numpy()[inside]]


def _in_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd rule: a point is inside when a ray to its right crosses the edges an odd number
    of times (one pass over the polygon's edges, vectorised over the points)."""
    inside = np.zeros(len(x), dtype=bool)
    if len(px) < 3:
        return inside
    for x1, y1, x2, y2 in zip(px, py, np.roll(px, -1), np.roll(py, -1), strict=True):
        spans = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= spans & (x < crossing)
    return inside


def selection_table(frame: pd.DataFrame, indices: list[int], thumbnails: list[str]) -> pd.DataFrame:
    """The selected samples as a table: ``image`` (data-URI thumbnail), ``sample``, ``class`` and
    whatever the map knows about each (observed label, flipped, AP@R, consistency)."""
    part = frame.set_index("index").loc[indices].reset_index()
    table = pd.DataFrame({"image": thumbnails, "sample": part["index"], "class": part["class"]})
    for column, name in (
        ("observed_class", "observed label"),
        ("flipped", "flipped"),
        ("ap@r", "AP@R"),
        ("first_correct_rank", "first correct rank"),
        ("consistency", "consistency"),
    ):
        if column in part:
            table[name] = part[column].to_numpy()
    return table


def umap_progress_notice(
    record: dict[str, Any] | None, now: float | None = None
) -> tuple[float, str]:
    """``(fraction done, one line)`` for a background UMAP's progress record
    (``dmlviz.project.background``) at Unix time ``now`` (default: the clock's); the layout's
    epochs make up most of the bar."""
    if not record:
        return 0.0, "UMAP is starting in the background."
    done, total = int(record.get("done") or 0), int(record.get("total") or 0)
    now = time.time() if now is None else now
    elapsed = max(0.0, now - float(record.get("started", now)))
    stage = record.get("stage")
    if stage == "layout" and total:
        fraction = 0.1 + 0.85 * done / total
        text = f"UMAP layout: epoch {done} of {total}"
    elif stage == "trustworthiness":
        fraction, text = 0.95, "UMAP: measuring its trustworthiness and saving it"
    elif stage == "stored":
        fraction, text = 1.0, "UMAP is ready"
    else:
        fraction, text = 0.05, "UMAP: building the nearest-neighbour graph"
    return fraction, f"{text} ({elapsed:.0f} s so far). PCA is shown until it is ready."


def trust_note(meta: dict[str, Any] | None, method: str) -> str:
    """One paragraph on how faithful the map is, from the projection's sidecar ``meta``
    (``trustworthiness``, ``trustworthiness_neighbors``, ``trustworthiness_points``, ``params``)."""
    name = {"umap": "UMAP", "pca": "PCA"}.get(method, method)
    if not meta:
        return f"{name} map. No projection metadata was stored, so its faithfulness is unknown."
    params = meta.get("params") if isinstance(meta.get("params"), dict) else {}
    shown = {key: params[key] for key in ("n_neighbors", "min_dist", "seed") if key in params}
    settings = ", ".join(f"{key}={value}" for key, value in shown.items())
    parts = [f"{name} map" + (f" ({settings})" if settings else "") + "."]
    trust = meta.get("trustworthiness")
    if trust is None:
        parts.append("No trustworthiness was stored for this map; distances on it may mislead.")
        return " ".join(parts)
    trust = float(trust)
    k = meta.get("trustworthiness_neighbors")
    points = meta.get("trustworthiness_points")
    verdict = "faithful" if trust >= 0.95 else "mostly faithful" if trust >= 0.85 else "distorted"
    among = f" among its {k} nearest" if k else " among its nearest"
    on = f", measured on {points} points" if points else ""
    parts.append(
        f"**Trustworthiness {trust:.3f}**{on}: 1 means every point's neighbours{among} on the map "
        f"are also close to it in the embedding space (no false neighbours); this map is "
        f"{verdict}. Points that look close here may not be: the query lens shows the true "
        "embedding neighbours."
    )
    return " ".join(parts)
