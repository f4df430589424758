"""A sweep's reports: the runs table, the summary over seeds, and its Markdown.

``runs.csv`` has one row per run (settings, state, MAP@R, R@1, neighbour consistency, detector,
and from the training replay the epoch at which the detector's AUROC peaked and the share of
flipped images memorised at the end);
``summary.csv`` the mean and standard deviation over seeds per loss x noise rate x train
fraction; ``summary.md`` the same summary as a Markdown table, then each loss against each other
at each noise rate with a 95 % interval (``differences.py``), also in ``differences.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from dmlviz.experiments.differences import differences_markdown, loss_differences
from dmlviz.experiments.folder import (
    DIFFERENCES_CSV,
    RUNS_CSV,
    SUMMARY_CSV,
    SUMMARY_MD,
    cancel_requested,
    evaluated,
    finished_run,
)
from dmlviz.experiments.spec import SweepSpec, run_name
from dmlviz.registry.metrics import METRICS, REPORT, shown_in
from dmlviz.runs import Run, RunError, atomic_write_text, is_run

SUMMARY_METRICS = tuple(m.key for m in shown_in(REPORT))  # dmlviz.registry.metrics
RUN_COLUMNS = (
    "name",
    "loss",
    "noise_kind",
    "noise_rate",
    "train_fraction",
    "seed",
    "epochs",
    "state",
    *SUMMARY_METRICS,
    "preset_source",
    "path",
)
REPORT_DIGITS = 3  # at most, after the point of a mean ± std (an epoch's is written 12.5)


def runs_table(out: str | Path, spec: SweepSpec) -> pd.DataFrame:
    """One row per planned run of ``spec`` in ``out`` (``RUN_COLUMNS``); metrics are empty (NaN)
    where undefined, e.g. the detector at 0 % noise or a run that has not finished."""
    out = Path(out)
    rows = []
    for loss, rate, seed, fraction in spec.combinations():
        name = run_name(loss, rate, seed, train_fraction=fraction)
        row: dict[str, Any] = {
            "name": name,
            "loss": loss,
            "noise_kind": spec.noise_kind,
            "noise_rate": rate,
            "train_fraction": fraction,
            "seed": seed,
            "state": "cancelled" if cancel_requested(out, name) else "queued",
        }
        if is_run(out / name):
            try:
                row.update(Run.load(out / name).summary())
            except RunError as error:
                row["state"] = f"broken: {error}"
            row["name"] = name
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for column in SUMMARY_METRICS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric per loss x noise rate x train
    fraction (runs without one trained on all their train data: 1).

    Only finished runs with a test MAP@R count; ``seeds`` is how many did. Columns: loss,
    noise_rate, train_fraction, seeds, ``<metric>_mean`` and ``<metric>_std`` for
    ``SUMMARY_METRICS`` (std empty with one seed), preset_source. Losses keep their order of
    first appearance.
    """
    runs = runs.assign(train_fraction=train_fractions(runs))
    done = runs[(runs["state"] == "finished") & runs["map@r"].notna()]
    columns = ["loss", "noise_rate", "train_fraction", "seeds"]
    columns += [f"{m}_{stat}" for m in SUMMARY_METRICS for stat in ("mean", "std")]
    columns.append("preset_source")
    rows = []
    for loss in dict.fromkeys(runs["loss"]):
        cells = runs.loc[runs["loss"] == loss, ["noise_rate", "train_fraction"]]
        for rate, fraction in sorted(set(cells.itertuples(index=False, name=None))):
            group = done[
                (done["loss"] == loss)
                & (done["noise_rate"] == rate)
                & (done["train_fraction"] == fraction)
            ]
            if group.empty:
                continue
            row: dict[str, Any] = {"loss": loss, "noise_rate": rate,
                                   "train_fraction": fraction, "seeds": len(group)}  # fmt: skip
            for metric in SUMMARY_METRICS:
                column = group[metric] if metric in group else pd.Series(dtype=float)
                values = pd.to_numeric(column, errors="coerce").dropna()
                row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
                row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            sources = sorted({str(s) for s in group["preset_source"].dropna()})
            row["preset_source"] = " / ".join(sources)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def most_data(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``summarize``'s table at its largest train fraction: comparisons across noise
    rates compare losses on one amount of train data (``dmlviz.views.withheld`` charts the
    fractions)."""
    if summary.empty:
        return summary
    fraction = train_fractions(summary)
    return summary[fraction == fraction.max()]


def train_fractions(runs: pd.DataFrame) -> pd.Series:
    """Each run's train fraction, 1 where the table has none (runs from before the setting)."""
    if "train_fraction" not in runs:
        return pd.Series(1.0, index=runs.index)
    return pd.to_numeric(runs["train_fraction"], errors="coerce").fillna(1.0)


def summary_markdown(summary: pd.DataFrame, title: str | None = None) -> str:
    """The summary as a Markdown table (mean ± std over seeds), with a warning when some losses
    use tuned presets and others do not."""
    lines = [f"# {title}", ""] if title else []
    if summary.empty:
        return "\n".join([*lines, "No finished runs yet.", ""])
    titles = [METRICS[m].short for m in SUMMARY_METRICS]
    withheld = bool((train_fractions(summary) != 1).any())  # a "train data" column only then
    lines += [
        f"| loss | noise |{' train data |' * withheld} seeds | {' | '.join(titles)} "
        "| hyperparameters |",
        "|---|---:|" + "---:|" * withheld + "---:|" + "---:|" * len(titles) + "---|",
    ]
    for row, fraction in zip(summary.to_dict("records"), train_fractions(summary), strict=True):
        cells = [
            str(row["loss"]),
            f"{row['noise_rate'] * 100:g} %",
            *([f"{fraction * 100:g} %"] if withheld else []),
            str(row["seeds"]),
            *(
                _mean_std(row[f"{m}_mean"], row[f"{m}_std"], min(REPORT_DIGITS, METRICS[m].digits))
                for m in SUMMARY_METRICS
            ),
            str(row["preset_source"] or ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± standard deviation over seeds (test split for MAP@R and R@1; neighbour consistency "
        "and the noisy-label detector on the train split). From the training replay: the epoch at "
        "which the detector's AUROC peaked, and the share of flipped images whose nearest "
        "neighbours carry their wrong label at the end (memorised). An empty cell is undefined, "
        "e.g. the detector without flipped labels or a run without replay.",
    ]
    warning = tuning_warning(summary)
    if warning:
        lines += ["", f"**Warning:** {warning}"]
    return "\n".join(lines) + "\n"


def tuning_warning(table: pd.DataFrame) -> str | None:
    """A sentence when the compared losses were not tuned alike (some tuned, some not), else None."""
    sources = {
        loss: " / ".join(sorted({str(s) for s in group["preset_source"].dropna()})) or "unknown"
        for loss, group in table.groupby("loss", sort=False)
    }
    tuned = [loss for loss, source in sources.items() if "tuned" in source]
    untuned = [loss for loss, source in sources.items() if "tuned" not in source]
    if not tuned or not untuned:
        return None
    return (
        f"an unequal comparison: {', '.join(tuned)} use hyperparameters tuned on validation, "
        f"{', '.join(f'{loss} ({sources[loss]})' for loss in untuned)} do not; part of a "
        "difference may come from tuning effort, not from the loss."
    )


def _mean_std(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or pd.isna(mean):
        return ""
    if std is None or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_reports(out: str | Path, spec: SweepSpec) -> pd.DataFrame:
    """Write ``runs.csv``, ``summary.csv``, ``differences.csv`` and ``summary.md`` for ``spec`` in
    ``out``; returns the runs table."""
    out = Path(out)
    frame = runs_table(out, spec)
    atomic_write_text(out / RUNS_CSV, frame.to_csv(index=False))
    summary = summarize(frame)
    atomic_write_text(out / SUMMARY_CSV, summary.to_csv(index=False))
    protocol = f" ({spec.protocol} protocol)" if spec.protocol else ""
    title = (
        f"Sweep: {spec.dataset}{protocol}, {spec.noise_kind} noise, "
        f"{len(spec.seeds)} seed{'s' if len(spec.seeds) > 1 else ''}"
    )
    differences = loss_differences(frame)
    atomic_write_text(out / DIFFERENCES_CSV, differences.to_csv(index=False))
    markdown = summary_markdown(summary, title)
    if not differences.empty:
        markdown += "\n" + differences_markdown(differences)
    atomic_write_text(out / SUMMARY_MD, markdown)
    return frame


def is_complete(out: str | Path, spec: SweepSpec) -> bool:
    """Whether every run of ``spec`` in ``out`` finished and the reports are written."""
    out = Path(out)
    if not (out / RUNS_CSV).exists():
        return False
    for name in spec.run_names():
        run = finished_run(out / name)
        if run is None or not evaluated(run):
            return False
    return True
