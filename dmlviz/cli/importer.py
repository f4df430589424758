"""``dmlviz import`` (a run directory from embeddings computed elsewhere: no model, no training)
and ``dmlviz export`` (a run's embeddings as the files ``import`` reads, or a run's or a sweep's
self-contained HTML report when ``--out`` ends in ``.html``)."""

from __future__ import annotations

import argparse
import shlex
import time
import warnings
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``import`` and ``export`` commands."""
    _add_import(subparsers)
    _add_export(subparsers)


def _add_import(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="make a run from your own embeddings (and labels, image paths) to explore them",
        description=(
            "Write a run directory from embeddings a model trained elsewhere produced, so that "
            "`dmlviz evaluate`, `dmlviz project` and every dashboard page work on them. "
            "Embeddings: .npy, .npz, .safetensors, .pt or .parquet (one row per sample). "
            "Labels: .npy, or text/CSV with one label per line or a `label` column. Images: a "
            "text file of paths, one per line, relative to its folder. Nothing is written when "
            "an input is wrong."
        ),
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="the new run's folder"
    )
    parser.add_argument(
        "--embeddings",
        type=Path,
        metavar="FILE",
        help="embeddings of the evaluated samples (each searched among the others)",
    )
    parser.add_argument("--labels", type=Path, metavar="FILE", help="their labels")
    sources = parser.add_mutually_exclusive_group()
    sources.add_argument(
        "--images", type=Path, metavar="FILE", help="their image paths, one per line"
    )
    sources.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="an Open Metric Learning CSV (label, path, split, is_query, is_gallery) giving "
        "labels and paths: --embeddings are its validation rows, --train-embeddings its train "
        "rows, in file order",
    )
    parser.add_argument(
        "--dataset-root",
        type=Path,
        metavar="DIR",
        help="folder the --csv paths are relative to (default: the CSV's folder)",
    )
    _add_split_files(parser)
    parser.add_argument(
        "--clean-labels",
        type=Path,
        metavar="FILE",
        help="the training samples' true labels: those differing from --train-labels are "
        "marked flipped and score the noise detector",
    )
    parser.add_argument("--name", help="the run's display name (default: the folder name)")
    parser.set_defaults(func=import_command)


def _add_split_files(parser: argparse.ArgumentParser) -> None:
    """The files of the train split, and of query and gallery splits in place of --embeddings."""
    parser.add_argument(
        "--train-embeddings", type=Path, metavar="FILE", help="embeddings of the training samples"
    )
    parser.add_argument(
        "--train-labels", type=Path, metavar="FILE", help="the labels the model was trained with"
    )
    parser.add_argument(
        "--train-images", type=Path, metavar="FILE", help="the training samples' image paths"
    )
    for split, searched in (("query", "searched in the gallery"), ("gallery", "searched")):
        parser.add_argument(
            f"--{split}-embeddings",
            type=Path,
            metavar="FILE",
            help=f"instead of --embeddings: embeddings of the {split} samples ({searched}, as "
            "In-Shop is evaluated)",
        )
        parser.add_argument(
            f"--{split}-labels", type=Path, metavar="FILE", help=f"the {split} samples' labels"
        )
        parser.add_argument(
            f"--{split}-images", type=Path, metavar="FILE", help=f"the {split} samples' image paths"
        )


def _add_export(subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="write a run's embeddings as files `dmlviz import` reads, or an HTML report",
        description=(
            "With --out DIR: write RUN's test (or query and gallery) and train embeddings to DIR "
            "as <split>.npy, "
            "<split>_labels.txt, <split>_paths.txt with the images as PNGs, and "
            "train_clean_labels.txt for a run trained on noisy labels. With --out FILE.html: write "
            "one self-contained HTML report of RUN or of every run below a sweep folder (settings "
            "and preset source, noise curves, maps, worst queries, suspicious labels, replay), "
            "viewable offline in any browser. A run being trained is not exported."
        ),
    )
    export.add_argument(
        "run", type=Path, metavar="RUN_OR_SWEEP", help="a run directory (or, for a report, a sweep)"
    )
    export.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR_OR_HTML",
        help="folder to write the files to; a name ending in .html writes the HTML report",
    )
    export.add_argument("--no-images", action="store_true", help="skip the images and paths")
    export.add_argument(
        "--force",
        action="store_true",
        help="export into a folder that is not empty, replacing the files of the same names "
        "(an HTML report is always replaced)",
    )
    export.set_defaults(func=export_command)


def import_command(args: argparse.Namespace) -> int:
    """Import the files the arguments name; prints the run's splits and warnings."""
    from dmlviz.runs import import_embeddings, imported_info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # imported.json's warnings are printed below
        run = import_embeddings(
            args.out,
            args.embeddings,
            query=_files(args, "query"),
            gallery=_files(args, "gallery"),
            labels=args.labels,
            images=args.images,
            csv=args.csv,
            train_embeddings=args.train_embeddings,
            train_labels=args.train_labels,
            train_images=args.train_images,
            clean_labels=args.clean_labels,
            name=args.name,
            dataset_root=args.dataset_root,
        )
    info = imported_info(run) or {}
    counts = ", ".join(f"{split} {n}" for split, n in info.get("counts", {}).items())
    print(
        f"{run.path}: imported {counts} embeddings of {run.config['embedding_dim']} dimensions, "
        f"{len(info.get('classes', []))} classes"
    )
    for problem in info.get("warnings", []):
        print(f"warning: {problem}")
    path = shlex.quote(str(run.path))
    print(f"next: dmlviz evaluate {path} && dmlviz project {path}")
    return 0


def _files(args: argparse.Namespace, split: str) -> tuple[Path, Path | None, Path | None] | None:
    """``(embeddings, labels, images)`` of ``split`` (query, gallery) as given, or None."""
    files = tuple(getattr(args, f"{split}_{kind}") for kind in ("embeddings", "labels", "images"))
    return None if files == (None, None, None) else files


def export_command(args: argparse.Namespace) -> int:
    """Export ``args.run`` into ``args.out`` (a report when it ends in ``.html``); prints the files
    written."""
    from dmlviz.runs import CONFIG, Run
    from dmlviz.runs.export import export_run, reimport_command

    if args.out.suffix.lower() == ".html":
        from dmlviz.views.report import write_report

        if (args.run / CONFIG).is_file():
            Run.load(args.run).check_not_training("export its report")
        started = time.perf_counter()
        out = write_report(args.run, args.out)
        size = out.stat().st_size / 1e6
        print(f"{out} ({size:.1f} MB, {time.perf_counter() - started:.1f} s)")
        return 0

    run = Run.load(args.run)
    run.check_not_training("export it")
    written = export_run(run, args.out, images=not args.no_images, force=args.force)
    for path in written.values():
        print(path)
    print(f"read back with: {reimport_command(written)}")
    return 0
