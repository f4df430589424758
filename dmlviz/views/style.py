"""Colours and names shared by every view, so a loss or a verdict looks the same on every page."""

from __future__ import annotations

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from dmlviz.registry import LOSSES

# One colour and one name per loss, everywhere (tables, lines, legends), as registered with it.
LOSS_COLORS: dict[str, str] = {name: entry.color for name, entry in LOSSES.items()}
# The Okabe-Ito colours no loss is registered with, and grey: for losses outside the registry.
EXTRA_COLORS = ("#D55E00", "#F0E442", "#000000", "#999999")
LOSS_NAMES: dict[str, str] = {name: entry.display_name for name, entry in LOSSES.items()}

CORRECT = "#1a9850"  # a neighbour with the query's clean label
WRONG = "#d73027"  # a neighbour of another class
NOISY = "#f28e2b"  # a sample whose observed (trained-on) label differs from its clean label
CLEAN = "#4c78a8"  # samples whose label was not flipped
MUTED = "#c7c7c7"
MISSING = "–"  # how a table shows a value that does not exist (``st.dataframe(placeholder=...)``)

# Qualitative palettes for classes: Tableau 10 (calm) up to 10 classes, Plotly's "Alphabet" (26
# distinguishable colours) beyond.
FEW_CLASS_COLORS: tuple[str, ...] = tuple(plotly.colors.qualitative.T10)
CLASS_COLORS: tuple[str, ...] = tuple(plotly.colors.qualitative.Alphabet)


def loss_color(loss: str) -> str:
    """The hex colour of ``loss`` (a stable fallback for losses outside ``LOSS_COLORS``)."""
    if loss in LOSS_COLORS:
        return LOSS_COLORS[loss]
    return EXTRA_COLORS[sum(map(ord, str(loss))) % len(EXTRA_COLORS)]


def loss_name(loss: str) -> str:
    """The display name of ``loss`` (``"rll"`` -> ``"Ranked List Loss"``)."""
    return LOSS_NAMES.get(loss, str(loss))


def class_color(label: int, num_classes: int) -> str:
    """The hex colour of class ``label``: a calm palette up to 10 classes, a wider one beyond,
    cycling past 26 classes."""
    palette = FEW_CLASS_COLORS if num_classes <= len(FEW_CLASS_COLORS) else CLASS_COLORS
    return palette[int(label) % len(palette)]


def percent(rate: float | None) -> str:
    """A rate in [0, 1] as ``"20 %"`` (``"-"`` when unknown)."""
    if rate is None or rate != rate:
        return "-"
    return f"{100 * float(rate):.0f} %"


def score(value: float | None, digits: int = 3) -> str:
    """A score such as MAP@R or AUROC with ``digits`` decimals (``"-"`` when unknown: None or
    NaN, e.g. the noise detector of a run without flipped labels)."""
    if value is None or value != value:
        return "-"
    return f"{float(value):.{digits}f}"


def annotate_empty(figure: go.Figure, text: str) -> None:
    """Write ``text`` in the middle of ``figure``, in place of data it has none of."""
    figure.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")


def seed_mean_line(loss: str, x, mean, std, seeds, x_hover: str, y_title: str) -> go.Scatter:
    """One loss's line of means over seeds with a one-standard-deviation bar (hidden where no
    point has one); the hover says ``x_hover`` (plotly template of x), the value and the seeds."""
    std = pd.to_numeric(std)
    return go.Scatter(
        x=x,
        y=mean,
        error_y=dict(type="data", array=std.fillna(0), visible=bool(std.notna().any())),
        mode="lines+markers",
        name=loss_name(loss),
        line=dict(color=loss_color(loss), width=2.5),
        marker=dict(size=8),
        customdata=pd.DataFrame({"seeds": seeds}),
        hovertemplate=(
            f"{loss_name(loss)}<br>{x_hover}<br>{y_title} %{{y:.3f}}"
            "<br>%{customdata[0]} seed(s)<extra></extra>"
        ),
    )
