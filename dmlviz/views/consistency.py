"""The Neighbour consistency page: does a sample's neighbourhood agree with its (possibly wrong)
training label, and how well does that disagreement find the flipped labels?"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dmlviz.registry.metrics import label
from dmlviz.views.embedding_map import class_names_of
from dmlviz.views.runs import metric_vs_noise
from dmlviz.views.style import CLEAN, MUTED, NOISY, annotate_empty
from dmlviz.views.templating import macro


def consistency_histogram(per_sample: pd.DataFrame, k: int | None = None) -> go.Figure:
    """Overlaid histograms of ``consistency_observed`` (share of a sample's k nearest neighbours
    carrying its observed label) for samples whose label was kept and for flipped ones, each
    normalised to percent of its group so the small flipped group stays visible."""
    figure = go.Figure()
    flipped = per_sample["flipped"].to_numpy(dtype=bool)
    values = per_sample["consistency_observed"].to_numpy(dtype=float)
    bins = dict(start=-0.05, end=1.05, size=0.1 if not k else 1.0 / k)
    for mask, name, color in ((~flipped, "label kept", CLEAN), (flipped, "label flipped", NOISY)):
        if mask.any():
            figure.add_trace(
                go.Histogram(
                    x=values[mask],
                    name=f"{name} ({int(mask.sum())})",
                    marker_color=color,
                    opacity=0.7,
                    histnorm="percent",
                    xbins=bins,
                )
            )
    of_k = f"{k} " if k else ""
    figure.update_layout(
        barmode="overlay",
        title="Neighbour consistency: clean vs flipped samples",
        xaxis_title=f"share of the {of_k}nearest neighbours with the sample's observed label",
        yaxis_title="% of the group",
        height=360,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    figure.update_layout(margin=dict(l=10, r=10, t=80, b=10))
    figure.update_xaxes(range=[-0.05, 1.05])
    return figure


def detector_roc(per_sample: pd.DataFrame) -> tuple[go.Figure, float | None]:
    """The ROC curve of flagging flipped labels by ``noise_score`` (higher = more suspicious), and
    its AUROC; (an explanatory empty chart, None) when the split has no flipped or no kept label."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dash", color="#999")
        )
    )
    flipped = per_sample["flipped"].to_numpy(dtype=bool)
    auroc = None
    if flipped.any() and (~flipped).any():
        scores = per_sample["noise_score"].to_numpy(dtype=float)
        fpr, tpr, _ = roc_curve(flipped, scores)
        auroc = float(roc_auc_score(flipped, scores))
        figure.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=f"kNN disagreement (AUROC {auroc:.3f})",
                line=dict(color=NOISY, width=3),
            )
        )
    else:
        annotate_empty(figure, "no flipped labels in this run: nothing to detect")
    figure.update_layout(
        title="Noisy-label detector ROC",
        xaxis_title="false positive rate (kept labels flagged)",
        yaxis_title="true positive rate (flipped labels found)",
        height=360,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(x=0.35, y=0.05),
    )
    figure.update_xaxes(range=[0, 1], constrain="domain")
    figure.update_yaxes(range=[0, 1.02], scaleanchor="x", scaleratio=1)
    return figure, auroc


def suspicious_samples(
    per_sample: pd.DataFrame, class_names: list[str] | None = None, n: int = 24
) -> pd.DataFrame:
    """The ``n`` samples with the highest ``noise_score`` (most neighbours disagree with their
    observed label), most suspicious first: ``index``, ``observed_class``, ``clean_class``,
    ``flipped``, ``consistency`` and ``noise_score``."""
    top = per_sample.sort_values("noise_score", ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "index": top["index"].to_numpy(dtype=np.int64),
            "observed_class": class_names_of(top["observed"].to_numpy(), class_names),
            "clean_class": class_names_of(top["clean"].to_numpy(), class_names),
            "flipped": top["flipped"].to_numpy(dtype=bool),
            "consistency": top["consistency_observed"].to_numpy(dtype=float),
            "noise_score": top["noise_score"].to_numpy(dtype=float),
        }
    )


def precision_at(per_sample: pd.DataFrame, n: int) -> float | None:
    """Share of truly flipped labels among the ``n`` most suspicious samples (None if empty):
    ``dmlviz.evaluate.top_precision``, so samples tied at the cut count by their expected share,
    as in the stored ``top_precision`` of the run's consistency summary."""
    from dmlviz.evaluate import top_precision

    if per_sample.empty or n < 1:
        return None
    count = min(int(n), len(per_sample))
    return top_precision(per_sample["noise_score"].to_numpy(), per_sample["flipped"], count)


def clean_labels_known(noise_rate: float | None) -> bool:
    """Whether a run knows its training images' clean labels, from its ``noise_rate`` (config or
    runs table): trained runs inject their noise; imported runs know them only when imported with
    ``--clean-labels``, else their rate is None (NaN in a table)."""
    return noise_rate is not None and not (isinstance(noise_rate, float) and math.isnan(noise_rate))


def suspicious_gallery_html(
    table: pd.DataFrame, thumbnails: list[str], clean_known: bool = True
) -> str:
    """The suspicious samples as thumbnail cards: observed label on top, clean label below, an
    orange frame where the label really was flipped (a true find), grey where it was not.
    Without ``clean_known`` (no clean labels were given, as for most imported runs) a card shows
    the trained label and the consistency only, and claims nothing about which label is right."""
    cards = []
    for row, uri in zip(table.to_dict("records"), thumbnails, strict=True):
        flipped = bool(clean_known and row["flipped"])
        cards.append(
            {
                "uri": uri,
                "index": row["index"],
                "consistency": row["consistency"],
                "observed_class": str(row["observed_class"]),
                "clean_class": str(row.get("clean_class")),
                "flipped": flipped,
                "color": NOISY if flipped else MUTED,
            }
        )
    return str(macro("cards.html.j2", "suspicious_strip")(cards, clean_known))


def across_runs(runs: pd.DataFrame) -> list[go.Figure]:
    """Consistency of clean and of flipped samples and the detector's AUROC against noise rate,
    one line per loss (mean ± std over seeds), each titled with its catalogued label: the
    cross-run view of the page."""
    return [
        metric_vs_noise(runs, key, label(key))
        for key in ("consistency_clean", "consistency_flipped", "detector_auroc")
        if key in runs and runs[key].notna().any()
    ]


def noisiest_run(runs: pd.DataFrame, row: dict) -> dict | None:
    """The run to look at label noise with when ``row``'s run has none: of the runs of ``runs``
    (``runs_overview`` rows) with the same dataset and loss and a noise rate above 0, the noisiest,
    preferring evaluated ones (a consistency of flipped labels), then the same noise kind and seed.
    Its summary row, or None when there is no such run."""
    if runs.empty:
        return None
    flipped = runs.get("consistency_flipped", pd.Series(np.nan, index=runs.index))
    candidates = runs.assign(
        _evaluated=flipped.notna(),
        _kind=runs["noise_kind"] == row.get("noise_kind"),
        _seed=runs["seed"] == row.get("seed"),
    )[
        (runs["dataset"] == row.get("dataset"))
        & (runs["loss"] == row.get("loss"))
        & (runs["noise_rate"] > 0)
        & (runs["path"] != row.get("path"))
    ]
    if candidates.empty:
        return None
    best = candidates.sort_values(
        ["_evaluated", "noise_rate", "_kind", "_seed", "path"],
        ascending=[False, False, False, False, True],
        kind="stable",
    ).iloc[0]
    return best.drop(["_evaluated", "_kind", "_seed"]).to_dict()
