"""Each loss against each other at each noise rate, with how sure the difference is.

A sweep's verdict ("RLL keeps more MAP@R at 40 % than contextual") compares means over a few seeds
on one test set. ``loss_differences`` gives each pair's difference B - A at each noise rate with
a 95 % interval from a hierarchical bootstrap (``dmlviz.evaluate.paired.seed_difference``: the
seeds of each loss and the test classes both resampled), from the runs' test per-query tables.
``summary.md``, ``differences.csv``, the HTML report and the noise lab's comparison text show it.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd

from dmlviz.evaluate.paired import (
    LEVEL,
    RESAMPLES,
    MetricDifference,
    SplitMismatch,
    seed_difference,
)
from dmlviz.registry.metrics import METRICS, REPORT, per_query_metrics
from dmlviz.runs import Run, RunError

# The per-query metrics a sweep's report shows (dmlviz.registry.metrics).
DIFFERENCE_METRICS = tuple(m.key for m in per_query_metrics() if REPORT in m.shown)
COLUMNS = (
    "noise_kind", "noise_rate", "train_fraction", "loss_a", "loss_b", "seeds_a", "seeds_b", "metric",
    "a", "b", "difference", "low", "high", "within_noise",
)  # fmt: skip

# (noise kind, noise rate, train fraction): a loss's runs in one cell are its seeds
Cell = tuple[str, float, float]


def loss_differences(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per noise kind, rate and train fraction x pair of losses (in order of first appearance) x metric
    of ``DIFFERENCE_METRICS``: ``COLUMNS``, B - A of the means over seeds with its interval.

    ``runs``: a table of runs with ``loss``, ``noise_rate``, ``path`` and optionally
    ``noise_kind`` (a sweep's runs table or the dashboard's); runs that did not finish (``state``)
    or have no test per-query table are left out, and so is a pair whose runs were scored on
    different test queries.
    """
    tables = _per_query_tables(runs)
    rows = []
    for cell in sorted({cell for cell, _ in tables}):
        losses = [(loss, found) for (at, loss), found in tables.items() if at == cell]
        for (loss_a, a), (loss_b, b) in combinations(losses, 2):
            try:
                found = seed_difference(a, b, DIFFERENCE_METRICS, resamples, seed)
            except SplitMismatch:
                continue
            for d in found:
                rows.append({"noise_kind": cell[0], "noise_rate": cell[1], "train_fraction": cell[2],
                             "loss_a": loss_a,
                             "loss_b": loss_b, "seeds_a": len(a), "seeds_b": len(b),
                             **d.to_dict()})  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _per_query_tables(runs: pd.DataFrame) -> dict[tuple[Cell, str], list[pd.DataFrame]]:
    """The test per-query tables of the finished runs, by (cell, loss), losses in order of first
    appearance."""
    from dmlviz.experiments.reports import train_fractions  # reports imports this module

    if "state" in runs:
        runs = runs[runs["state"] == "finished"]
    runs = runs.assign(train_fraction=train_fractions(runs))
    tables: dict[tuple[Cell, str], list[pd.DataFrame]] = {}
    for row in runs.to_dict("records"):
        path = row.get("path")
        if not isinstance(path, str) or not Path(path).is_dir():
            continue
        try:
            table = Run.load(path).per_query("test")
        except RunError:
            continue
        if table is not None:
            kind = row.get("noise_kind")
            noise = (kind if isinstance(kind, str) else "", float(row["noise_rate"]))
            cell = (*noise, float(row["train_fraction"]))
            tables.setdefault((cell, str(row["loss"])), []).append(table)
    return tables


def _noise(row: dict) -> str:
    """The row's noise in words: "40 % symmetric", or "40 %" when its kind is not known."""
    return f"{row['noise_rate'] * 100:g} % {row['noise_kind']}".strip()


def _data(row: dict) -> str:
    """ " on 50 % of the train data" when the row's runs withheld train data, else ""."""
    fraction = row.get("train_fraction", 1.0)
    return "" if fraction == 1 else f" on {fraction * 100:g} % of the train data"


def difference_sentence(row: dict) -> str:
    """A row of ``loss_differences`` in words: the difference, its interval, over how many seeds,
    and whether it is within noise."""
    difference = MetricDifference(
        row["metric"], row["a"], row["b"], row["difference"], row["low"], row["high"]
    )
    seeds = f"{row['seeds_a']} and {row['seeds_b']} seeds"
    return (
        f"At {_noise(row)} noise{_data(row)}, "
        f"{difference.text(row['loss_a'], row['loss_b'])}, over {seeds} and the test classes."
    )


def differences_markdown(table: pd.DataFrame) -> str:
    """The loss-against-loss differences as a Markdown section ("" when there are none)."""
    if table.empty:
        return ""
    lines = [
        "## Loss against loss",
        "",
        "| noise | A | B | metric | B - A | 95 % interval | seeds | verdict |",
        "|---:|---|---|---|---:|---|---:|---|",
    ]
    for row in table.to_dict("records"):
        entry = METRICS[row["metric"]]
        digits = min(3, entry.digits)
        if row["within_noise"]:
            verdict = "within noise"
        else:
            better = (row["difference"] > 0) == entry.higher_is_better
            verdict = f"{row['loss_b'] if better else row['loss_a']} better"
        lines.append(
            f"| {_noise(row)}{_data(row)} | {row['loss_a']} | {row['loss_b']} | {entry.short} "
            f"| {row['difference']:+.{digits}f} | [{row['low']:+.{digits}f}, "
            f"{row['high']:+.{digits}f}] | {row['seeds_a']} / {row['seeds_b']} | {verdict} |"
        )
    lines += [
        "",
        f"B - A of the means over seeds on the test split, with a {LEVEL * 100:g} % interval "
        "from a bootstrap that resamples each loss's seeds and the test classes (queries of one "
        "class are not independent). Within noise: the interval covers 0, so these runs cannot "
        "tell the two losses apart.",
    ]
    return "\n".join(lines) + "\n"
