"""The Loss anatomy page (teaching): one small batch, the loss's hyperparameters as sliders, and
heatmaps of everything ``loss.explain`` returns, so you can see which pairs get gradient and why."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from dmlviz.registry import LOSSES
from dmlviz.views.style import loss_name

EXPLAINED_LOSSES = ("contextual", "rll")


@dataclass(frozen=True)
class Param:
    """A slider for one hyperparameter: its range, step and a one-line meaning (its default is
    the loss's registered one)."""

    name: str
    low: float
    high: float
    step: float
    help: str
    integer: bool = False


def _sliders(loss: str) -> tuple[Param, ...]:
    """The sliders of ``loss``: its registered hyperparameters that have one."""
    return tuple(
        Param(p.name, *p.slider, p.help, integer=p.integer)
        for p in LOSSES[loss].hyperparameters
        if p.slider is not None
    )


PARAMS: dict[str, tuple[Param, ...]] = {loss: _sliders(loss) for loss in EXPLAINED_LOSSES}


def default_params(loss: str, loss_kwargs: dict | None = None) -> dict[str, float]:
    """Slider defaults for ``loss``: the run's own ``loss_kwargs`` where given, else the loss's
    registered defaults, clipped to the slider range. A hyperparameter derived from another (RLL's
    alpha) that the run leaves unset is derived from that one's slider value."""
    given = loss_kwargs or {}
    registered = LOSSES[loss]
    values = {}
    for param in PARAMS[loss]:
        declared = registered.hyperparameter(param.name)
        value = given.get(param.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            value = registered.defaults[param.name]
            if declared.follows is not None and declared.follows in values:
                value = declared.derive(values[declared.follows])
        value = float(np.clip(value, param.low, param.high))
        values[param.name] = int(value) if param.integer else value
    return values


def feasible_params(loss: str, params: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """``params`` the loss can explain, and a warning when they had to change: RLL's margin is
    lowered to alpha, as a positive boundary alpha - m below 0 has no meaning on the sliders."""
    if loss == "rll" and params["margin"] > params["alpha"]:
        warning = "margin is larger than alpha: the positive boundary alpha - m would be negative."
        return {**params, "margin": params["alpha"]}, warning
    return params, None


def draw_batch(
    labels: np.ndarray, classes: int = 4, per_class: int = 4, seed: int = 0
) -> np.ndarray:
    """Indices of a small m-per-class batch: ``classes`` random classes having at least
    ``per_class`` samples, ``per_class`` random samples each, grouped by class (seeded)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    eligible = values[counts >= per_class]
    if len(eligible) < 2:
        raise ValueError(f"need at least two classes with {per_class} samples each to draw a batch")
    chosen = np.sort(rng.choice(eligible, size=min(classes, len(eligible)), replace=False))
    parts = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in chosen]
    return np.concatenate([np.sort(p) for p in parts])


def explain(
    loss: str, params: dict[str, float], embeddings: np.ndarray, labels: np.ndarray
) -> dict:
    """``dmlviz.losses.build(loss, **params).explain(...)`` on a numpy batch: a dict of arrays."""
    import torch

    from dmlviz.losses import build

    module = build(loss, **params)
    return module.explain(
        torch.as_tensor(np.asarray(embeddings, dtype=np.float32)),
        torch.as_tensor(np.asarray(labels, dtype=np.int64)),
    )


@dataclass
class Panel:
    """One heatmap or chart of the page, with a caption saying how to read it."""

    title: str
    caption: str
    figure: go.Figure


def tick_labels(
    indices: np.ndarray, class_names: list[str], flipped: np.ndarray | None = None
) -> list[str]:
    """Axis labels ``"<class> #<index>"`` for a batch, starred where the label was flipped."""
    flipped = np.zeros(len(indices), bool) if flipped is None else np.asarray(flipped, bool)
    return [
        f"{c}{'*' if f else ''} #{i}" for c, i, f in zip(class_names, indices, flipped, strict=True)
    ]


def heatmap(
    matrix: np.ndarray,
    ticks: list[str],
    title: str,
    colorscale: str | list = "Viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    colorbar: str | None = "",
    text_format: str = ".2f",
) -> go.Figure:
    """An (n, n) matrix as a square heatmap, row = query / anchor i, column = j, with class block
    ticks; values on hover. ``colorbar=None`` hides the colour bar (for 0/1 masks)."""
    figure = go.Figure(
        go.Heatmap(
            z=np.asarray(matrix, dtype=float),
            x=ticks,
            y=ticks,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            showscale=colorbar is not None,
            colorbar=dict(title=colorbar or "", thickness=12),
            hovertemplate=f"i %{{y}}<br>j %{{x}}<br>%{{z:{text_format}}}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    figure.update_layout(
        title=dict(text=title, font=dict(size=15)),
        height=420,
        margin=dict(l=10, r=10, t=40, b=10),
        plot_bgcolor="white",
    )
    figure.update_yaxes(autorange="reversed", tickfont=dict(size=9), scaleanchor="x")
    figure.update_xaxes(tickfont=dict(size=9), tickangle=-60, side="bottom")
    return figure


def panels(loss: str, explained: dict, ticks: list[str]) -> list[Panel]:
    """The page's heatmaps for ``loss`` (``"contextual"`` or ``"rll"``) from ``explained``."""
    if loss == "contextual":
        return _contextual_panels(explained, ticks)
    if loss == "rll":
        return _rll_panels(explained, ticks)
    raise ValueError(f"the anatomy view explains {', '.join(EXPLAINED_LOSSES)}, not {loss!r}")


def loss_terms(loss: str, explained: dict) -> dict[str, float]:
    """The scalar terms of the batch loss, by display name."""
    if loss == "contextual":
        names = {
            "loss": "total loss",
            "L_ctx": "contextual term",
            "L_con": "contrastive term",
            "L_reg": "regulariser",
        }
        return {label: float(explained[key]) for key, label in names.items() if key in explained}
    active_pos = int(np.asarray(explained["positive_mask"]).sum())
    active_neg = int(np.asarray(explained["negative_mask"]).sum())
    return {
        "total loss": float(explained["loss"]),
        "mean L_P (positives)": float(np.mean(explained["L_P"])),
        "mean L_N (negatives)": float(np.mean(explained["L_N"])),
        "active pairs": float(active_pos + active_neg),
    }


def _contextual_panels(e: dict, ticks: list[str]) -> list[Panel]:
    Y = np.asarray(e["Y"])
    W = np.asarray(e["W"])
    error = (W - Y) ** 2
    np.fill_diagonal(error, np.nan)
    return [
        Panel(
            "S: cosine similarity",
            "Plain similarity of the embeddings; class blocks on the diagonal mean the batch is "
            "already well separated.",
            heatmap(e["S"], ticks, "S = f fᵀ", "RdBu_r", -1, 1, "cos"),
        ),
        Panel(
            "N: k-nearest-neighbour sets",
            "Row i marks N(i), the k nearest samples of i (itself included, plus any within ε of "
            "the k-th). Contextual similarity compares these sets, not raw distances.",
            heatmap(
                e["N"],
                ticks,
                "N (1 = j is among i's k neighbours)",
                [[0, "#f7f7f7"], [1, "#2c7fb8"]],
                0,
                1,
                "",
                ".0f",
            ),
        ),
        Panel(
            "W: contextual similarity",
            "How much the neighbourhoods of i and j overlap (after query expansion over mutual "
            "neighbours and symmetrising). The loss wants W = 1 within a class, 0 across.",
            heatmap(W, ticks, "W (contextual similarity)", "Viridis", 0, 1, "W"),
        ),
        Panel(
            "Where the contextual term pushes: (W - Y)²",
            "Bright cells are pairs whose contextual similarity disagrees with their labels: "
            "same-class pairs with little shared context, or other-class pairs that share it. "
            "Starred samples (*) carry a flipped label.",
            heatmap(error, ticks, "(W - Y)², diagonal left out", "Reds", 0, 1, "error"),
        ),
    ]


# The steps of the contextual similarity (docs/contextual.md), in order: explain() key, title, and
# what the step does.
CONTEXTUAL_STEPS: tuple[tuple[str, str, str], ...] = (
    ("N", "1 · N: k-nearest neighbours",
     "Row i marks N(i): i itself and its k - 1 nearest samples, plus any within ε of the k-th."),
    ("A", "2a · A: shared neighbours",
     "|N(i) ∩ N(j)| / |N(i)|, the share of i's neighbours that are also j's: a Jaccard-like "
     "overlap of two neighbour sets (the idea of k-reciprocal re-ranking)."),
    ("B", "2b · B: shared non-neighbours",
     "|¬N(i) ∩ ¬N(j)| / |¬N(i)|: agreement on who is *not* a neighbour; with A it tells pairs "
     "that share context from pairs that merely sit apart."),
    ("W_tilde", "2c · W̃ = ½(A + B) inside N",
     "The first contextual similarity, kept only where j is among i's k neighbours."),
    ("R", "3a · R: mutual k/2-neighbours",
     "j is in R(i) when each is among the other's k/2 nearest: the set a query expands over."),
    ("W_hat", "3b · Ŵ: query expansion",
     "Each row of W̃ averaged over the mutual neighbours R(i): i borrows its close friends' "
     "context, which smooths out one odd neighbour."),
    ("W", "4 · W = ½(Ŵ + Ŵᵀ)",
     "Made symmetric: the contextual similarity the loss compares with the labels Y."),
)  # fmt: skip


def contextual_step(explained: dict, step: int, ticks: list[str]) -> Panel:
    """The ``step``-th (0-based) of ``CONTEXTUAL_STEPS`` of a contextual ``explain()`` result as a
    heatmap panel; masks (N, R) in two colours, the others on [0, 1]."""
    key, title, caption = CONTEXTUAL_STEPS[step]
    if key in ("N", "R"):
        figure = heatmap(explained[key], ticks, title, [[0, "#f7f7f7"], [1, "#2c7fb8"]], 0, 1,
                         None, ".0f")  # fmt: skip
    else:
        figure = heatmap(explained[key], ticks, title, "Viridis", 0, 1, key)
    return Panel(title, caption, figure)


def _rll_panels(e: dict, ticks: list[str]) -> list[Panel]:
    positive = np.asarray(e["positive_mask"], dtype=bool)
    negative = np.asarray(e["negative_mask"], dtype=bool)
    active = positive.astype(float) - negative.astype(float)
    scale = [[0.0, "#d73027"], [0.5, "#f7f7f7"], [1.0, "#1a9850"]]
    return [
        Panel(
            "d: Euclidean distance",
            "Distance between unit embeddings (0 = identical, 2 = opposite).",
            heatmap(e["distances"], ticks, "d_ij = ‖e_i - e_j‖", "Viridis_r", 0, 2, "d"),
        ),
        Panel(
            "Active pairs",
            "Green: non-trivial positives (same class, farther than α - m), pulled in. Red: "
            "non-trivial negatives (other class, closer than α), pushed out. White pairs already "
            "satisfy the loss and get no gradient.",
            heatmap(
                active, ticks, "+1 pulled positive · -1 pushed negative", scale, -1, 1, "", ".0f"
            ),
        ),
        Panel(
            "Negative weights",
            "Each query's pushed negatives, weighted by exp(T_n · violation) and normalised per "
            "row: a high T_n concentrates the push on the hardest negative.",
            heatmap(e["negative_weights"], ticks, "w⁻ (rows sum to 1)", "Reds", 0, None, "w⁻"),
        ),
        Panel(
            "Positive weights",
            "Each query's pulled positives, weighted by exp(T_p · violation) (T_p = 0: equally).",
            heatmap(e["positive_weights"], ticks, "w⁺ (rows sum to 1)", "Greens", 0, None, "w⁺"),
        ),
        Panel(
            "Per-query losses",
            "L_P: how far the query's positives lie outside the α - m ball; L_N: how deep its "
            "negatives sit inside α.",
            _per_query_bars(e, ticks),
        ),
    ]


def _per_query_bars(e: dict, ticks: list[str]) -> go.Figure:
    figure = go.Figure()
    figure.add_trace(
        go.Bar(x=ticks, y=np.asarray(e["L_P"]), name="L_P (positives)", marker_color="#1a9850")
    )
    figure.add_trace(
        go.Bar(x=ticks, y=np.asarray(e["L_N"]), name="L_N (negatives)", marker_color="#d73027")
    )
    figure.update_layout(
        barmode="group",
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_title="loss",
        legend=dict(orientation="h", y=1.1),
    )
    figure.update_xaxes(tickfont=dict(size=9), tickangle=-60)
    return figure


def describe(loss: str) -> str:
    """A short Markdown explanation of what the loss does, for the page header."""
    if loss == "contextual":
        return (
            f"**{loss_name(loss)}** (Liao et al., 2023) judges a pair by its *context*: two samples "
            "are similar when their k-nearest-neighbour sets overlap. That makes it robust to a few "
            "wrong labels: one mislabelled sample barely changes its neighbours' neighbourhoods."
        )
    return (
        f"**{loss_name(loss)}** (Wang et al., 2019) ranks the batch for every query: positives must "
        "lie within α - m, negatives beyond α. Only violating pairs get gradient, and the hardest "
        "negatives get most of it."
    )
