"""How sure a difference between runs is: a bootstrap over test classes (and seeds).

Two runs scored on the same test split give, per query, a value of each metric (the per-query
table, ``eval/test_per_query.parquet``). The difference of their means (B - A) is only as sure as
the test set is large, and the queries of one class are not independent (they share the class's
images as references), so the resampled unit is the **class**: a resample draws the test classes
with replacement and recomputes each run's mean over the queries of the drawn classes, the same
classes for both runs (paired). With several seeds per side (a sweep), each resample also draws
each side's seeds with replacement (a hierarchical bootstrap: seed noise and test-set noise both
count). The interval is the 2.5 and 97.5 percentiles of the resampled differences.

Vectorised: a run's per-class sums of each metric, ``S`` (classes x metrics), and the classes'
query counts ``n`` turn a resample's class counts ``c`` into means ``c @ S / c @ n``; a block of
resamples is one matrix product.

``compare_runs`` compares two runs; ``seed_difference`` two groups of runs (one per seed each);
``PairedComparison`` holds the differences and the classes and queries that explain the most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.registry.metrics import METRICS, Metric, per_query_metrics
from dmlviz.runs import Run

PAIRED_METRICS = tuple(m.key for m in per_query_metrics())  # dmlviz.registry.metrics
RESAMPLES = 2000
LEVEL = 0.95
TOP = 5  # classes and queries listed as explaining the difference
BLOCK_CELLS = 2**22  # resamples x classes drawn at once (32 MiB of counts)


class SplitMismatch(ValueError):
    """The runs were not scored on the same test queries, so their per-query values do not pair."""


@dataclass(frozen=True)
class MetricDifference:
    """One metric's difference B - A with its ``LEVEL`` interval; ``a`` and ``b`` are the runs'
    means (over seeds too, for groups of runs)."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float

    @property
    def within_noise(self) -> bool:
        """Whether the interval covers 0: the data cannot tell the runs apart on this metric."""
        return self.low <= 0.0 <= self.high

    def text(self, name_a: str = "A", name_b: str = "B") -> str:
        """One sentence: the difference, its interval and whether it is within noise."""
        entry = METRICS[self.metric]
        interval = f"{_signed(self.difference, entry)} [{_signed(self.low, entry)}, " \
                   f"{_signed(self.high, entry)}]"  # fmt: skip
        if self.within_noise:
            verdict = f"within noise: the {LEVEL * 100:g} % interval covers 0"
        else:
            better = (self.difference > 0) == entry.higher_is_better
            verdict = f"{name_b if better else name_a} is better: the interval excludes 0"
        return f"{entry.label} {name_b} - {name_a}: {interval} ({verdict})"

    def to_dict(self) -> dict[str, Any]:
        """The fields and ``within_noise`` as plain JSON values."""
        return {
            "metric": self.metric, "a": self.a, "b": self.b, "difference": self.difference,
            "low": self.low, "high": self.high, "within_noise": self.within_noise,
        }  # fmt: skip


@dataclass
class PairedComparison:
    """``compare_runs``'s answer. ``classes`` and ``queries``: the ``TOP`` test classes and
    queries whose share of the difference of ``explained`` is the largest in size, columns
    ``label`` (and ``query``), ``queries`` (for classes), ``a``, ``b`` (their values or class
    means) and ``contribution`` (their part of B - A: the contributions of all classes add up to
    the difference)."""

    differences: list[MetricDifference]
    explained: str
    classes: pd.DataFrame
    queries: pd.DataFrame
    num_classes: int
    num_queries: int
    resamples: int
    seed: int
    names: tuple[str, str] = ("A", "B")

    def text(self) -> str:
        """``dmlviz compare``'s text, in lines: a header, one sentence per metric, the classes and
        queries that explain the most, and what the intervals count."""
        a, b = self.names
        lines = [
            f"A = {a}, B = {b}: {self.num_queries} test queries in {self.num_classes} "
            f"classes, {self.resamples} class resamples (seed {self.seed})",
            "",
            *(d.text("A", "B") for d in self.differences),
        ]
        entry = METRICS[self.explained]
        digits = entry.digits
        lines += ["", f"Classes that explain most of the {entry.label} difference:"]
        for row in self.classes.to_dict("records"):
            lines.append(
                f"  class {row['label']} ({row['queries']} queries): A {row['a']:.{digits}f}, "
                f"B {row['b']:.{digits}f}, contributes {row['contribution']:+.{digits}f}"
            )
        lines += ["", f"Queries that explain most of the {entry.label} difference:"]
        for row in self.queries.to_dict("records"):
            lines.append(
                f"  query {row['query']} (class {row['label']}): A {row['a']:.{digits}f}, "
                f"B {row['b']:.{digits}f}, contributes {row['contribution']:+.{digits}f}"
            )
        lines += [
            "",
            "The intervals count the test set's noise (which classes happen to be tested), not "
            "the training's: two seeds of the same settings can differ by more. To judge "
            "settings, compare sweeps of several seeds (their summary.md resamples seeds too).",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON values (``dmlviz compare --json``)."""
        return {
            "a": self.names[0], "b": self.names[1], "level": LEVEL,
            "resamples": self.resamples, "seed": self.seed,
            "classes": self.num_classes, "queries": self.num_queries,
            "differences": [d.to_dict() for d in self.differences],
            "explained": self.explained,
            "top_classes": self.classes.to_dict("records"),
            "top_queries": self.queries.to_dict("records"),
        }  # fmt: skip


def check_same_split(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str] = ("A", "B")) -> None:
    """Raise ``SplitMismatch`` saying what differs unless the per-query tables ``a`` and ``b``
    hold the same queries (index and label) with the same number of relevant references."""
    hint = (
        "compare runs of the same test split: the same dataset, protocol and split seed "
        "(`dmlviz runs` shows each run's split)"
    )
    if len(a) != len(b):
        raise SplitMismatch(
            f"{names[0]} has {len(a)} test queries, {names[1]} has {len(b)}: {hint}"
        )
    for column, what in (("query", "query indices"), ("label", "labels"), ("r", "references")):
        if column not in a or column not in b:
            continue
        values_a, values_b = a[column].tolist(), b[column].tolist()
        if values_a != values_b:
            first = next(
                i for i, (x, y) in enumerate(zip(values_a, values_b, strict=True)) if x != y
            )
            raise SplitMismatch(
                f"the test queries' {what} differ (first at row {first}: {values_a[first]!r} in "
                f"{names[0]}, {values_b[first]!r} in {names[1]}): {hint}"
            )


def class_sums(
    per_query: pd.DataFrame, columns: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scored queries' (``r > 0``) classes, counts and sums: ``(labels, n, S)`` with ``n``
    the queries per class and ``S`` (classes x columns) the sums of ``columns`` per class."""
    scored = per_query[per_query["r"] > 0]
    labels, index = np.unique(scored["label"].to_numpy(), return_inverse=True)
    n = np.bincount(index, minlength=len(labels)).astype(float)
    S = np.stack(
        [
            np.bincount(index, weights=scored[c].to_numpy(float), minlength=len(labels))
            for c in columns
        ],
        axis=1,
    )
    return labels, n, S


def bootstrap_differences(
    S_a: np.ndarray, S_b: np.ndarray, n: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Resampled differences of means B - A, shape (resamples, metrics).

    ``S_a`` (seeds_a x classes x metrics) and ``S_b`` (seeds_b x ...): each run's per-class sums;
    ``n`` (classes): the queries per class, the same for every run (one test split). Each resample
    draws the classes with replacement (the same draw for both sides) and each side's seeds with
    replacement; one seed per side is the plain paired class bootstrap.
    """
    rng = np.random.default_rng(seed)
    classes = len(n)
    out = np.empty((resamples, S_a.shape[2]))
    block = max(1, BLOCK_CELLS // max(classes, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        counts = rng.multinomial(classes, np.full(classes, 1 / classes), size=size).astype(float)
        queries = counts @ n  # (size,)
        means = [_seed_means(counts, S, rng) for S in (S_a, S_b)]
        out[start : start + size] = (means[1] - means[0]) / queries[:, None]
    return out


def _seed_means(counts: np.ndarray, S: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sums over the drawn classes, averaged over the drawn seeds: (resamples, metrics)."""
    seeds = S.shape[0]
    classes, metrics = S.shape[1:]
    # each seed's sums over the drawn classes, (resamples, seeds, metrics): one matrix product
    totals = (counts @ S.transpose(1, 0, 2).reshape(classes, -1)).reshape(-1, seeds, metrics)
    weights = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=len(counts)) / seeds
    return np.einsum("rsm,rs->rm", totals, weights)


def seed_difference(
    tables_a: list[pd.DataFrame],
    tables_b: list[pd.DataFrame],
    metrics: tuple[str, ...] = PAIRED_METRICS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[MetricDifference]:
    """The difference B - A of the mean over seeds of each of ``metrics`` (those whose per-query
    column every table has), from the per-query tables of A's and B's runs (one per seed), with a
    hierarchical bootstrap interval (seeds and classes resampled). Raises ``SplitMismatch`` unless
    every table holds the same test queries."""
    tables = [*tables_a, *tables_b]
    for table in tables[1:]:
        check_same_split(tables[0], table, ("the first run", "another run"))
    keys = [k for k in metrics if all(METRICS[k].per_query in t for t in tables)]
    columns = [METRICS[k].per_query for k in keys]
    sums = [[class_sums(t, columns) for t in side] for side in (tables_a, tables_b)]
    n = sums[0][0][1]
    S_a, S_b = (np.stack([s[2] for s in side]) for side in sums)
    draws = bootstrap_differences(S_a, S_b, n, resamples, seed)
    mean_a, mean_b = S_a.sum(axis=1).mean(axis=0) / n.sum(), S_b.sum(axis=1).mean(axis=0) / n.sum()
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return [
        MetricDifference(
            k,
            float(mean_a[j]),
            float(mean_b[j]),
            float(mean_b[j] - mean_a[j]),
            float(low[j]),
            float(high[j]),
        )
        for j, k in enumerate(keys)
    ]


def compare_tables(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics: tuple[str, ...] = PAIRED_METRICS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
) -> PairedComparison:
    """The paired class bootstrap of two per-query tables of the same test split: each of
    ``metrics``' difference B - A with its interval, and the classes and queries that explain most
    of the first metric's difference. Raises ``SplitMismatch`` saying what differs otherwise."""
    check_same_split(a, b, names)
    differences = seed_difference([a], [b], metrics, resamples, seed)
    if not differences:
        raise ValueError(
            f"none of the metrics {', '.join(metrics)} has a per-query column in both runs"
        )
    explained = differences[0].metric
    column = METRICS[explained].per_query
    scored = (a["r"] > 0).to_numpy()
    queries = pd.DataFrame({
        "query": a["query"].to_numpy()[scored], "label": a["label"].to_numpy()[scored],
        "a": a[column].to_numpy(float)[scored], "b": b[column].to_numpy(float)[scored],
    })  # fmt: skip
    queries["contribution"] = (queries["b"] - queries["a"]) / len(queries)
    grouped = queries.groupby("label", sort=True)
    classes = grouped[["a", "b"]].mean()
    classes.insert(0, "queries", grouped.size())
    classes["contribution"] = grouped["contribution"].sum()
    return PairedComparison(
        differences=differences,
        explained=explained,
        classes=_largest(classes.reset_index()),
        queries=_largest(queries),
        num_classes=len(classes),
        num_queries=len(queries),
        resamples=resamples,
        seed=seed,
        names=names,
    )


def compare_runs(
    run_a: Run,
    run_b: Run,
    metrics: tuple[str, ...] = PAIRED_METRICS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """``compare_tables`` of the two runs' test per-query tables (``ValueError`` saying what to run
    when one is not evaluated, ``SplitMismatch`` when they were scored on different queries)."""
    tables = []
    for run in (run_a, run_b):
        table = run.per_query("test")
        if table is None:
            raise ValueError(
                f"{run.path} has no test per-query table: evaluate it first (`dmlviz evaluate "
                f"{run.path}`)"
            )
        tables.append(table)
    return compare_tables(*tables, metrics, resamples, seed, (run_a.name, run_b.name))


def _largest(table: pd.DataFrame) -> pd.DataFrame:
    """The ``TOP`` rows of ``table`` with the largest contribution in size, largest first."""
    order = table["contribution"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order[:TOP]].reset_index(drop=True)


def _signed(value: float, entry: Metric) -> str:
    return f"{value:+.{entry.digits}f}"
