"""Withheld training data: test retrieval, and the train-test gap, against the share of train
data kept (``train_fraction``), one line per loss, for the Runs page and the HTML report.

The contextual-loss paper claims the loss "is less prone to overfitting even when a large portion
of train data is withheld": the gap between train and test MAP@R is that overfitting.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dmlviz.experiments.reports import train_fractions
from dmlviz.registry.metrics import label
from dmlviz.views.style import annotate_empty, seed_mean_line

GAP = "train_test_gap"  # train MAP@R minus test MAP@R of one run
GAP_LABEL = "Train MAP@R − test MAP@R"


def withholds_data(runs: pd.DataFrame) -> bool:
    """Whether some run of ``runs`` (``runs_overview``'s table) trained on part of its train data:
    the charts against the fraction say something only then."""
    return "train_fraction" in runs and bool((train_fractions(runs) < 1).any())


def over_seeds(runs: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean and standard deviation over seeds of column ``value`` per loss x train fraction, of
    the finished runs at the lowest noise rate measured (so fractions are compared at one rate).
    Columns: loss, train_fraction, mean, std (NaN with one seed), seeds. Losses in order of first
    appearance, fractions ascending."""
    columns = ["loss", "train_fraction", "mean", "std", "seeds"]
    needed = {"loss", "noise_rate", "state", value}
    if not needed <= set(runs.columns) or runs.empty:
        return pd.DataFrame(columns=columns)
    frame = runs.assign(train_fraction=train_fractions(runs), value=pd.to_numeric(runs[value]))
    frame = frame[(frame["state"] == "finished") & frame["value"].notna()]
    frame = frame[frame["noise_rate"] == frame["noise_rate"].min()]
    grouped = frame.groupby(["loss", "train_fraction"], sort=False)["value"]
    table = grouped.agg(mean="mean", std="std", seeds="count").reset_index()
    order = {loss: i for i, loss in enumerate(dict.fromkeys(runs["loss"]))}
    table = table.assign(order=table["loss"].map(order)).sort_values(["order", "train_fraction"])
    return table[columns].reset_index(drop=True)


def metric_vs_fraction(runs: pd.DataFrame, metric: str = "map@r") -> go.Figure:
    """Test ``metric`` (a catalogue key, e.g. "map@r", "recall@1") against the share of train
    data kept, per loss: the mean over seeds with one standard deviation as error bar."""
    name = label(metric)
    return _chart(over_seeds(runs, metric), f"Test {name} against train data kept", name)


def gap_vs_fraction(runs: pd.DataFrame) -> go.Figure:
    """Train MAP@R minus test MAP@R (overfitting: larger is worse) against the share of train
    data kept, per loss: the mean over seeds with one standard deviation as error bar."""
    with_gap = runs
    if {"train_map@r", "map@r"} <= set(runs.columns):
        gap = pd.to_numeric(runs["train_map@r"]) - pd.to_numeric(runs["map@r"])
        with_gap = runs.assign(**{GAP: gap})
    return _chart(over_seeds(with_gap, GAP), "Overfitting against train data kept", GAP_LABEL)


def withheld_figures(runs: pd.DataFrame) -> list[go.Figure]:
    """The charts against the train data kept, test MAP@R, R@1 and the train-test gap; none
    when every run trained on all its train data."""
    if not withholds_data(runs):
        return []
    return [metric_vs_fraction(runs, "map@r"), metric_vs_fraction(runs, "recall@1"),
            gap_vs_fraction(runs)]  # fmt: skip


def _chart(table: pd.DataFrame, title: str, y_title: str) -> go.Figure:
    """One line per loss of ``over_seeds``' table against the fraction in %."""
    figure = go.Figure()
    for loss, group in table.groupby("loss", sort=False):
        figure.add_trace(
            seed_mean_line(
                str(loss),
                100 * group["train_fraction"],
                group["mean"],
                group["std"],
                group["seeds"],
                "%{x:.0f} % of train data",
                y_title,
            )  # fmt: skip
        )
    figure.update_layout(
        title=title,
        xaxis_title="train data kept (% of each class's images)",
        yaxis_title=y_title,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title=""),
        height=380,
        margin=dict(l=10, r=10, t=80, b=10),
    )
    kept = sorted({float(x) for trace in figure.data for x in trace.x})
    if kept:
        figure.update_xaxes(tickvals=kept, range=[min(kept) - 4, max(kept) + 4])
    if not figure.data:
        annotate_empty(figure, "no finished, evaluated runs yet")
    return figure
