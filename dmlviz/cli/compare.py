"""``dmlviz compare RUN_A RUN_B``: how sure the difference between two runs is."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dmlviz.registry.metrics import per_query_metrics
from dmlviz.validate import check_number

# dmlviz.evaluate.paired's defaults, written out: importing it would load faiss for every command
RESAMPLES = 2000


def register(subparsers) -> None:
    """Add the ``compare`` command."""
    compare = subparsers.add_parser(
        "compare",
        help="the difference between two runs' test metrics, with 95 %% intervals",
        description=(
            "Compare two runs evaluated on the same test split: for each per-query metric, the "
            "difference B - A of the means with a 95 %% interval from a paired bootstrap over test "
            "classes (the queries of one class are not independent), whether it is within noise "
            "(the interval covers 0), and the test classes and queries that explain most of the "
            "difference. Runs scored on different test queries are refused (exit status 2)."
        ),
    )
    compare.add_argument("run_a", type=Path, metavar="RUN_A", help="the run compared against")
    compare.add_argument("run_b", type=Path, metavar="RUN_B", help="the run whose gain is shown")
    compare.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        choices=[m.key for m in per_query_metrics()],
        help="a metric to compare (repeatable; default: all; the first one's difference is "
        "explained by classes and queries)",
    )
    compare.add_argument(
        "--resamples",
        type=int,
        default=RESAMPLES,
        help=f"bootstrap resamples (default {RESAMPLES})",
    )
    compare.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    """Print the comparison of ``args.run_a`` and ``args.run_b``; returns the exit code."""
    from dmlviz.evaluate.paired import PAIRED_METRICS, compare_runs
    from dmlviz.runs import Run

    check_number("--resamples", args.resamples, 100, integer=True)
    comparison = compare_runs(
        Run.load(args.run_a),
        Run.load(args.run_b),
        tuple(args.metrics or PAIRED_METRICS),
        args.resamples,
        args.seed,
    )
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2, default=_plain))
        return 0
    print(comparison.text())
    return 0


def _plain(value: object) -> object:
    """A numpy scalar as its Python value (json.dumps's fallback)."""
    return value.item() if hasattr(value, "item") else str(value)
