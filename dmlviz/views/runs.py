"""The Runs page: a table of every run, metrics against label-noise rate, training curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dmlviz.registry.metrics import CURVES, TABLE, label, shown_in, summary_metrics
from dmlviz.runs import BrokenRun, Run, RunError
from dmlviz.views.style import annotate_empty, loss_color, loss_name, percent, seed_mean_line

# Run.summary() keys shown in the runs table, with their display names: the settings, then the
# metrics the catalogue shows in the table (dmlviz.registry.metrics), then the run's progress.
TABLE_COLUMNS: dict[str, str] = {
    "name": "Run",
    "dataset": "Dataset",
    "loss": "Loss",
    "noise_kind": "Noise",
    "noise_rate": "Noise rate",
    "train_fraction": "Train data",
    "seed": "Seed",
    **{m.key: m.short[0].upper() + m.short[1:] for m in shown_in(TABLE)},
    "preset_source": "Hyperparameters",
    "split_layout": "Splits",
    "test_classes_in_train": "Test classes in train",
    "state": "State",
    "epoch": "Epochs done",
}
CURVE_DASHES = ("solid", "dot", "dash", "dashdot")  # test curves first, then validation ones


def runs_overview(items: list[Run | BrokenRun]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split what ``find_runs`` returned into ``(runs, broken)``.

    ``runs``: one ``Run.summary()`` row per readable run (``path`` identifies it). ``broken``:
    columns ``name``, ``path``, ``reason`` for folders that cannot be opened, and for runs whose
    summary files are corrupt.
    """
    rows: list[dict[str, Any]] = []
    broken: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, BrokenRun):
            broken.append({"name": item.name, "path": str(item.path), "reason": item.reason})
            continue
        try:
            rows.append(item.summary())
        except RunError as error:
            broken.append({"name": item.name, "path": str(item.path), "reason": str(error)})
    runs = pd.DataFrame(
        rows,
        columns=list(dict.fromkeys([*TABLE_COLUMNS, "path", *rows[0]]))
        if rows
        else [*TABLE_COLUMNS, "path"],
    )
    for column in ("noise_rate", "train_fraction", *(m.key for m in summary_metrics())):
        if column in runs:
            runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs["test_classes_in_train"] = pd.to_numeric(runs["test_classes_in_train"]).astype("Int64")
    return runs, pd.DataFrame(broken, columns=["name", "path", "reason"])


def run_label(row: dict[str, Any] | pd.Series) -> str:
    """A short human name of a run: ``"ctx-20 · Contextual · 20 % symmetric · seed 0"``."""
    parts = [str(row.get("name"))]
    if _given(row.get("loss")):
        parts.append(loss_name(str(row.get("loss"))))
    elif _given(row.get("imported")) and bool(row.get("imported")):
        parts.append("imported")
    rate = row.get("noise_rate")
    if rate is not None and not (isinstance(rate, float) and math.isnan(rate)):
        kind = row.get("noise_kind") if _given(row.get("noise_kind")) else ""
        parts.append("no noise" if float(rate) == 0 else f"{percent(rate)} {kind}".strip())
    fraction = row.get("train_fraction")
    if _given(fraction) and float(fraction) != 1:
        parts.append(f"{percent(fraction)} of train data")
    if row.get("seed") is not None and not pd.isna(row.get("seed")):
        parts.append(f"seed {int(row.get('seed'))}")
    return " · ".join(parts)


def _given(value: Any) -> bool:
    """Whether a summary value is set (not None, not the NaN a table fills gaps with)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


# left out of the table when every run shares them
SHARED_COLUMNS = (
    "dataset",
    "noise_kind",
    "train_fraction",
    "split_layout",
    "test_classes_in_train",
)
LAYOUT_COLUMNS = ("split_layout", "test_classes_in_train")  # unknown for runs trained before


def shared_settings(runs: pd.DataFrame) -> dict[str, Any]:
    """The ``SHARED_COLUMNS`` settings that every run in ``runs`` has in common (and knows),
    but for all the train data (``train_fraction`` 1): nothing to say."""
    return {
        column: runs[column].iloc[0]
        for column in SHARED_COLUMNS
        if column in runs
        and len(runs)
        and runs[column].nunique(dropna=False) == 1
        and not pd.isna(runs[column].iloc[0])
        and not (column == "train_fraction" and runs[column].iloc[0] == 1)
    }


def display_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table as shown: readable column names, loss display names, noise rate and train
    data in %, and without the settings all runs share (``shared_settings``; the page states
    them once), that no run records (``LAYOUT_COLUMNS`` of older runs) or that say nothing (all
    the train data for every run)."""
    shared = shared_settings(runs)
    silent = {c for c in LAYOUT_COLUMNS if c in runs and runs[c].isna().all()}
    if "train_fraction" in runs and (runs["train_fraction"] == 1).all():
        silent.add("train_fraction")
    frame = runs[[c for c in TABLE_COLUMNS if c in runs and c not in {*shared, *silent}]].copy()
    frame["loss"] = frame["loss"].map(lambda v: loss_name(str(v)) if _given(v) else None)
    frame["noise_rate"] = 100 * frame["noise_rate"]
    if "train_fraction" in frame:
        frame["train_fraction"] = 100 * frame["train_fraction"]
    return frame.rename(columns=TABLE_COLUMNS)


def metric_vs_noise(runs: pd.DataFrame, metric: str, title: str | None = None) -> go.Figure:
    """``metric`` against the label-noise rate, one line per loss: the mean over seeds with an
    error bar of one standard deviation (no bar with a single seed). Finished runs only; of
    those that withheld train data, only the ones that kept the most (``views.withheld`` charts
    the fractions)."""
    from dmlviz.experiments.reports import most_data, summarize

    figure = go.Figure()
    needed = {"loss", "noise_rate", "state", "map@r", metric}
    summary = summarize(runs) if needed <= set(runs.columns) and len(runs) else pd.DataFrame()
    summary = most_data(summary)
    if not summary.empty and f"{metric}_mean" in summary:
        for loss, group in summary.groupby("loss", sort=False):
            group = group.dropna(subset=[f"{metric}_mean"]).sort_values("noise_rate")
            if group.empty:
                continue
            figure.add_trace(
                seed_mean_line(
                    str(loss),
                    100 * group["noise_rate"],
                    group[f"{metric}_mean"],
                    group[f"{metric}_std"],
                    group["seeds"],
                    "noise %{x:.0f} %",
                    label(metric),
                )  # fmt: skip
            )
    name = label(metric)
    figure.update_layout(
        title=title or f"{name} against label noise",
        xaxis_title="label noise (% of train labels flipped)",
        yaxis_title=name,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title=""),
        height=380,
        margin=dict(l=10, r=10, t=80, b=10),
    )
    rates = sorted({float(x) for trace in figure.data for x in trace.x})
    if rates:  # ticks at the measured rates; a little room either side of a lone rate
        figure.update_xaxes(tickvals=rates, range=[min(rates) - 4, max(rates) + 4])
    if not figure.data:
        annotate_empty(figure, "no finished, evaluated runs yet")
    return figure


def training_curves(metrics: pd.DataFrame, loss: str | None = None) -> go.Figure:
    """A run's ``metrics.jsonl`` as two panels against epoch: the training loss, and the test
    MAP@R / R@1 of evaluated epochs (validation ones too when logged)."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("training loss", "test retrieval"),
        horizontal_spacing=0.1,
    )
    color = loss_color(loss) if loss else None
    if not metrics.empty and "epoch" in metrics:
        if "loss" in metrics:
            figure.add_trace(
                go.Scatter(
                    x=metrics["epoch"],
                    y=metrics["loss"],
                    mode="lines+markers",
                    name="loss",
                    line=dict(color=color),
                ),
                row=1,
                col=1,
            )
        curves = shown_in(CURVES)
        names = {m.key: m.short for m in curves} | {
            f"val_{m.key}": f"val {m.short}" for m in curves
        }
        for key, dash in zip(names, CURVE_DASHES * len(names), strict=False):
            if key in metrics and metrics[key].notna().any():
                points = metrics[["epoch", key]].dropna()
                figure.add_trace(
                    go.Scatter(
                        x=points["epoch"],
                        y=points[key],
                        mode="lines+markers",
                        name=names[key],
                        line=dict(dash=dash, color=color),
                    ),
                    row=1,
                    col=2,
                )
    figure.update_xaxes(title_text="epoch", matches="x")
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend_title="")
    return figure


def getting_started(runs_dir: str | Path) -> str:
    """Markdown telling a user with no runs in ``runs_dir`` exactly how to make some."""
    from dmlviz.experiments.spec import DEMO_TIME

    runs_dir = Path(runs_dir)
    exists = runs_dir.is_dir()
    where = f"`{runs_dir}`" + ("" if exists else " (it does not exist yet)")
    return f"""
No training runs found in {where}.

**The quickest start** trains a small sweep on the bundled digits data (contextual, Ranked List
Loss and multi-similarity at 0, 20 and 40 % label noise, {DEMO_TIME}) and opens this dashboard on
it:

```bash
make demo            # or: dmlviz demo
```

**One run at a time:**

```bash
dmlviz train --dataset digits --loss contextual --out {runs_dir}/ctx
dmlviz train --dataset digits --loss rll --noise 0.2 --out {runs_dir}/rll-noise20
dmlviz dashboard {runs_dir}
```

**A sweep** (every loss x noise rate x seed, evaluated and projected):

```bash
dmlviz sweep --dataset digits --losses contextual,rll --noise 0,0.2,0.4 --seeds 0,1 --out {runs_dir}/sweep
```

Training writes embeddings, evaluation and maps into each run folder; the dashboard only reads them.
"""
