"""``dmlviz evaluate RUN`` (retrieval metrics, neighbour consistency) and ``dmlviz project RUN``
(UMAP / PCA maps), both writing into the run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dmlviz.registry.datasets import SPLITS
from dmlviz.validate import check_number

# dmlviz.evaluate.CLUSTERING, written out: importing it would load faiss for every command
CLUSTERING = ("auto", "full", "off")


def register(subparsers) -> None:
    """Add the ``evaluate`` and ``project`` commands."""
    evaluate = subparsers.add_parser(
        "evaluate",
        help="retrieval metrics and label-noise neighbour consistency of runs",
        description=(
            "Evaluate each RUN from its embeddings: Recall@K, Precision@1, R-Precision, MAP@R, mAP, "
            "NMI and AMI per split (exact faiss search unless --approximate), per-query tables and "
            "top-K neighbours, and for the train split the share of each sample's K nearest "
            "neighbours that agree with its label (a detector of flipped labels). Writes RUN/eval/."
        ),
    )
    evaluate.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    evaluate.add_argument(
        "--k", type=int, default=10, help="neighbours per sample for label consistency (default 10)"
    )
    evaluate.add_argument(
        "--top-k", type=int, default=20, help="neighbours kept per query (default 20)"
    )
    evaluate.add_argument(
        "--clustering",
        choices=CLUSTERING,
        default="auto",
        help="k-means behind NMI/AMI: full = pytorch-metric-learning's 20 iterations; auto "
        "(default) = fewer where those would take longer than the search, skipped below 12 "
        "samples per class, as the output says; off = no NMI/AMI",
    )
    evaluate.add_argument(
        "--approximate",
        action="store_true",
        help="approximate search (faster on large splits; MAP@R, R-Precision, P@1, Recall@K "
        "within about 0.005 of exact; no full-ranking mAP)",
    )
    evaluate.set_defaults(func=evaluate_command)

    project = subparsers.add_parser(
        "project",
        help="2-D maps (UMAP, PCA) of runs' embeddings, cached in the run",
        description=(
            "Compute UMAP and/or PCA maps of each RUN's train and test (and query and gallery) "
            "embeddings into RUN/projections/, with their parameters and trustworthiness. A map "
            "whose parameters and embeddings did not change is reused unless --force is given."
        ),
    )
    project.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    project.add_argument(
        "--methods", default="umap,pca", help="comma-separated, from umap and pca (default both)"
    )
    project.add_argument(
        "--splits",
        help="comma-separated splits (default train,test, and query,gallery where the run has them)",
    )
    project.add_argument("--force", action="store_true", help="recompute maps even if cached")
    project.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours (default 15)")
    project.add_argument(
        "--min-dist", type=float, default=0.1, help="UMAP minimum distance (default 0.1)"
    )
    project.add_argument("--seed", type=int, default=0, help="UMAP seed (default 0)")
    project.set_defaults(func=project_command)


def evaluate_command(args: argparse.Namespace) -> int:
    """Evaluate every run in ``args.runs``; prints one summary per run; returns the exit code."""
    from dmlviz.evaluate import evaluate_run
    from dmlviz.runs import Run

    check_number("--k", args.k, 1, integer=True)
    check_number("--top-k", args.top_k, 1, integer=True)
    runs = [Run.load(path) for path in args.runs]
    for run in runs:  # every run checked before any is evaluated
        run.check_not_training("evaluate it")
        samples = run.num_samples("train") if run.has_embeddings("train") else 0
        if args.k >= samples >= 2:
            raise ValueError(
                f"argument --k: {args.k} neighbours is too many for {run.path}, whose train "
                f"split has {samples} samples: give --k from 1 to {samples - 1}"
            )
    for run in runs:
        results = evaluate_run(
            run, k=args.k, top_k=args.top_k, clustering=args.clustering, exact=not args.approximate
        )
        print(f"{run.name}: {_describe(results)}")
    return 0


def project_command(args: argparse.Namespace) -> int:
    """Make the maps of every run in ``args.runs``; prints what was computed; returns the exit code."""
    from dmlviz.project import MAP_METHODS, project_run
    from dmlviz.runs import Run

    methods = _split_list(args.methods, "--methods")
    unknown = [m for m in methods if m not in MAP_METHODS]
    if unknown:
        raise ValueError(
            f"argument --methods: unknown method(s) {', '.join(unknown)}; choose from {', '.join(MAP_METHODS)}"
        )
    splits = _split_list(args.splits, "--splits") if args.splits else None
    check_number("--n-neighbors", args.n_neighbors, 2, integer=True)
    check_number("--min-dist", args.min_dist, 0, 1)
    unknown = [split for split in splits or () if split not in SPLITS]
    if unknown:
        raise ValueError(
            f"argument --splits: unknown split(s) {', '.join(unknown)}; choose from "
            f"{', '.join(SPLITS)}"
        )
    runs = [Run.load(path) for path in args.runs]
    for run in runs:
        run.check_not_training("project it")
    for run in runs:
        outcome = project_run(
            run,
            splits=splits or _default_splits(run),
            methods=methods,
            force=args.force,
            n_neighbors=args.n_neighbors,
            min_dist=args.min_dist,
            seed=args.seed,
        )
        done = ", ".join(f"{name} {what}" for name, what in outcome.items())
        print(f"{run.name}: {done}")
    return 0


def _default_splits(run) -> tuple[str, ...]:
    """train and test, plus query and gallery for runs evaluated query against gallery."""
    shop = tuple(split for split in ("query", "gallery") if run.has_embeddings(split))
    return ("train", "test", *shop)


def _split_list(text: str, option: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise ValueError(f"argument {option}: give at least one name, got {text!r}")
    return items


def _describe(results: dict[str, Any]) -> str:
    """One line: MAP@R, R@1 and NMI (with how it was computed) per split, then the noise
    detector's numbers."""
    parts = []
    for split, metrics in results.items():
        if split in ("consistency", "replay") or metrics is None:
            continue
        search = "" if metrics.get("exact", True) else " (approximate search)"
        parts.append(
            f"{split}{search} MAP@R {_number(metrics.get('map@r'))} "
            f"R@1 {_number(metrics.get('recall@1'))} "
            f"NMI {_number(metrics.get('nmi'))} [{metrics.get('nmi_method', 'n/a')}]"
            + lone_note(metrics)
        )
    consistency = results.get("consistency")
    if consistency:
        parts.append(
            f"consistency clean {_number(consistency['consistency_clean'])} "
            f"flipped {_number(consistency['consistency_flipped'])} "
            f"AUROC {_number(consistency['detector_auroc'])}"
        )
    replay = results.get("replay")
    if replay:
        peak = replay.get("auroc_peak_epoch")
        parts.append(
            f"replay: detector AUROC peaked at epoch {'n/a' if peak is None else peak}, "
            f"memorised at the end {_number(replay.get('memorised_end'))}"
        )
    return "; ".join(parts)


def lone_note(metrics: dict[str, Any]) -> str:
    """Why a split's ranking metrics are n/a or leave queries out: its lone queries (no other
    sample of their class to find, in their split or in the gallery); empty when there are none."""
    lone = int(metrics.get("num_lone_queries") or 0)
    if not lone:
        return ""
    if metrics.get("reference_split") == "gallery":
        match = "no sample of their class in the gallery"
    else:
        match = "no other sample of their class in the split"
    if not metrics.get("num_queries"):
        return (
            f" (MAP@R and R@1 n/a: all {lone} queries have {match}, so there is nothing to "
            "retrieve; NMI then only says each class is its own cluster)"
        )
    return (
        f" ({lone} of {lone + int(metrics['num_queries'])} queries have {match}: left out of "
        "MAP@R and R@1)"
    )


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"
