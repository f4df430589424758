"""The Replay page: how the train probe moves during training (an aligned map per snapshot, the
flipped images drawn with their trails), what each snapshot measures, and a query's ranked list
at one epoch next to the last. Plain functions over ``Run`` (the dashboard caches them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dmlviz.evaluate.replay import evaluate_replay
from dmlviz.project.replay import METHOD
from dmlviz.registry.metrics import replay_curves
from dmlviz.runs import Run
from dmlviz.views.lens import Ranking, live_ranking
from dmlviz.views.style import EXTRA_COLORS, NOISY, class_color, loss_color

# (column, title, panel): the curves against epoch, in four panels (dmlviz.registry.metrics; a
# test-split metric's title says so).
CURVES = tuple(
    (m.key, f"test {m.short}" if m.source == "test" else m.short, m.replay_panel)
    for m in sorted(replay_curves(), key=lambda m: m.replay_panel)
)
PANELS = ("Retrieval (test)", "Noise detector AUROC (train probe)",
          "Flipped images memorised", "Neighbour consistency")  # fmt: skip


@dataclass
class ReplayData:
    """One run's replay, loaded: ``epochs`` of its snapshots, the per-snapshot ``metrics``, the
    ``probe`` (indices and labels), the aligned layout (``layout_epochs``, ``coords`` (frames, n,
    2), ``trust`` per frame; None before ``dmlviz project``), and ``problems`` to show."""

    path: str
    epochs: list[int]
    probe: dict[str, np.ndarray]
    metrics: pd.DataFrame
    layout_epochs: list[int] = field(default_factory=list)
    coords: np.ndarray | None = None
    trust: list[float | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_replay(run: Run) -> ReplayData | None:
    """``run``'s replay (None when it has none). The per-snapshot metrics are computed now when
    they are missing or older than the snapshots (they take about a second); the layout is
    read as stored, else ``problems`` says how to make it."""
    epochs = run.replay_epochs()
    probe = run.replay_probe()
    if not epochs or probe is None:
        return None
    metrics = run.replay_metrics()
    if metrics is None or metrics["epoch"].tolist() != epochs:
        metrics = evaluate_replay(run)
    data = ReplayData(str(run.path), epochs, probe, metrics)
    stored = run.replay_layout(METHOD)
    if stored is None or stored[0].tolist() != epochs:
        data.problems.append(
            f"No aligned replay map for these snapshots yet: run `dmlviz project {run.path}`."
        )
    else:
        data.layout_epochs = stored[0].tolist()
        data.coords = stored[1]
        data.trust = list(stored[2].get("trustworthiness") or [])
    return data


def frame_at(epochs: list[int], epoch: int) -> int:
    """The index of the last snapshot taken at or before ``epoch`` (the first one before any)."""
    index = int(np.searchsorted(np.asarray(epochs), epoch, side="right")) - 1
    return max(index, 0)


def all_epochs(replays: list[ReplayData]) -> list[int]:
    """Every snapshot epoch of any of ``replays``, ascending: the shared slider's stops."""
    return sorted({epoch for data in replays for epoch in data.epochs})


def replay_map(
    data: ReplayData,
    epoch: int,
    trail: int = 3,
    class_names: list[str] | None = None,
    title: str | None = None,
    height: int = 480,
) -> go.Figure:
    """The aligned map at ``epoch`` (its last snapshot at or before it): clean probe images as
    dots in their clean class's colour, flipped ones as orange crosses with a trail through
    their places at the ``trail`` snapshots before. An empty figure with a note before the
    layout exists."""
    figure = go.Figure()
    figure.update_layout(
        title=title,
        height=height,
        margin=dict(l=0, r=0, t=40 if title else 10, b=0),
        plot_bgcolor="white",
        legend=dict(itemsizing="constant", orientation="h", y=-0.02),
        uirevision="replay",
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    if data.coords is None:
        figure.add_annotation(text="no aligned map yet", showarrow=False, x=0.5, y=0.5,
                              xref="paper", yref="paper")  # fmt: skip
        return figure
    i = frame_at(data.layout_epochs, epoch)
    coords = data.coords[i]
    clean, observed = data.probe["clean"], data.probe["observed"]
    flipped = data.probe["flipped"].astype(bool)
    classes = np.unique(clean)
    for label in classes:
        rows = np.flatnonzero((clean == label) & ~flipped)
        name = class_names[label] if class_names and label < len(class_names) else str(label)
        figure.add_trace(go.Scattergl(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name,
            marker=dict(size=5, color=class_color(label, len(classes)), opacity=0.8),
            hoverinfo="skip",
        ))  # fmt: skip
    rows = np.flatnonzero(flipped)
    if len(rows):
        start = max(0, i - trail)
        path = data.coords[start : i + 1, rows]  # (steps, flipped, 2)
        xs = np.concatenate([path[:, :, 0].T, np.full((len(rows), 1), np.nan)], axis=1).ravel()
        ys = np.concatenate([path[:, :, 1].T, np.full((len(rows), 1), np.nan)], axis=1).ravel()
        figure.add_trace(go.Scattergl(
            x=xs, y=ys, mode="lines", name="trail", line=dict(color=NOISY, width=1),
            opacity=0.35, hoverinfo="skip", showlegend=False,
        ))  # fmt: skip
        text = [
            f"train #{data.probe['train_index'][r]}: clean {clean[r]}, trained as {observed[r]}"
            for r in rows
        ]
        figure.add_trace(go.Scattergl(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name="flipped label",
            marker=dict(size=5, color=NOISY, symbol="x", opacity=0.9),
            text=text, hovertemplate="%{text}<extra></extra>",
        ))  # fmt: skip
    return figure


def replay_curves(
    replays: list[tuple[str, str, ReplayData]], epoch: int | None = None, height: int = 460
) -> go.Figure:
    """The ``CURVES`` against epoch in four panels, one colour per run (``replays``: label, loss,
    data; its loss's colour), the second curve of a panel dashed, the chosen ``epoch`` marked by a
    vertical line."""
    figure = make_subplots(rows=2, cols=2, subplot_titles=PANELS, horizontal_spacing=0.08,
                           vertical_spacing=0.16)  # fmt: skip
    colours: list[str] = []
    for _, loss, _ in replays:
        colour = loss_color(loss)
        colours.append(colour if colour not in colours else EXTRA_COLORS[len(colours)])
    for (label, _, data), colour in zip(replays, colours, strict=True):
        seen_panels: set[int] = set()
        for column, name, panel in CURVES:
            dash = "dash" if panel in seen_panels else "solid"
            seen_panels.add(panel)
            if column not in data.metrics or data.metrics[column].isna().all():
                continue
            figure.add_trace(
                go.Scatter(x=data.metrics["epoch"], y=data.metrics[column], mode="lines+markers",
                           name=f"{name}: {label}", legendgroup=label, marker=dict(size=4),
                           line=dict(color=colour, dash=dash)),
                row=(panel - 1) // 2 + 1, col=(panel - 1) % 2 + 1,
            )  # fmt: skip
    if epoch is not None:
        for panel in range(1, 5):
            figure.add_vline(x=epoch, line=dict(color="#777", dash="dot"),
                             row=(panel - 1) // 2 + 1, col=(panel - 1) % 2 + 1)  # fmt: skip
    figure.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0),
                         legend=dict(font=dict(size=10)))  # fmt: skip
    figure.update_xaxes(title_text="epoch", row=2)
    return figure


def snapshot_ranking(
    data: ReplayData, run: Run, epoch: int, query: int, top_k: int = 10
) -> Ranking:
    """Test probe image ``query`` (a position in the probe) ranked among the other test probe
    images by the snapshot at or before ``epoch``; neighbour indices are probe positions."""
    snapshot = data.epochs[frame_at(data.epochs, epoch)]
    _, test = run.replay_snapshot(snapshot)
    return live_ranking(test, data.probe["test_labels"], query, top_k)
