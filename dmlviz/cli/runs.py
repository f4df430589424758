"""``dmlviz runs [DIR]`` (a table of the runs below DIR) and ``dmlviz embed RUN`` (its embeddings)."""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path
from typing import Any

from dmlviz.cli import zero_shot
from dmlviz.registry.datasets import SPLITS
from dmlviz.registry.metrics import CLI, shown_in
from dmlviz.registry.settings import add_option

TRAIN_DATA = "train data"
# (column title, summary key, format): the settings, the metrics the catalogue shows here
# (dmlviz.registry.metrics), how the data was split.
COLUMNS = (
    ("name", "name", "{}"),
    ("dataset", "dataset", "{}"),
    ("model", "model", "{}"),
    ("loss", "loss", "{}"),
    ("noise", "noise", "{}"),
    (TRAIN_DATA, "train_fraction", "{:g}"),  # shown only when some run withheld train data
    ("seed", "seed", "{}"),
    ("state", "state", "{}"),
    ("epochs", "progress", "{}"),
    *((m.short, m.key, f"{{:.{m.digits}f}}") for m in shown_in(CLI)),
    ("splits", "split_layout", "{}"),
    ("test classes in train", "test_classes_in_train", "{}"),
)


def register(subparsers) -> None:
    """Add the ``runs`` and ``embed`` commands."""
    runs = subparsers.add_parser(
        "runs",
        help="list the runs below a folder with their settings, state and metrics",
        description=(
            "List every run below DIR: dataset, model, loss, label noise, seed, state, epochs done, "
            f"its metrics ({'; '.join(f'{m.short}: {m.help}' for m in shown_in(CLI))}), how the "
            "data was split (e.g. seeded class split, train/test folders, separate test tree, csv "
            "split column) and how many test classes also occur in train. Folders that cannot be "
            "read are listed with the reason."
        ),
    )
    runs.add_argument(
        "dir", nargs="?", default="runs", type=Path, metavar="DIR", help="default: runs"
    )
    runs.set_defaults(func=list_runs)

    embed = subparsers.add_parser(
        "embed",
        help="write a run's embeddings, or a zero-shot baseline run (--dataset, --model)",
        description="Embed the splits of RUN with its saved weights into RUN/embeddings/<split>.npz; "
        "or, with --dataset and --out instead of RUN, embed a dataset with an untrained model.",
    )
    embed.add_argument("run", type=Path, nargs="?", metavar="RUN", help="a run directory")
    embed.add_argument(
        "--split",
        dest="splits",
        action="append",
        choices=SPLITS,
        help="a split to embed (repeatable; default: train and the held-out splits of the run's "
        "data: test, or query and gallery, and val when the run has one)",
    )
    add_option(embed, "device")
    zero_shot.add_arguments(embed)
    embed.set_defaults(func=embed_command)


def list_runs(args: argparse.Namespace) -> int:
    """Print the table of runs below ``args.dir``; returns the exit code."""
    from dmlviz.runs import BrokenRun, RunError, find_runs

    if not args.dir.is_dir():
        raise ValueError(f"argument DIR: {args.dir} is not a folder")
    rows, broken, died = [], [], []
    for found in find_runs(args.dir):
        if isinstance(found, BrokenRun):
            broken.append((found.path, found.reason))
            continue
        try:
            row = _row(found.summary())
            # the folder, not config.json's name: copies of a run are told apart
            row["name"] = (
                found.path.name if found.path == args.dir else str(found.path.relative_to(args.dir))
            )
            if row["state"] == "died":
                died.append((found.path, found.status().get("pid")))
            rows.append(row)
        except RunError as error:
            broken.append((found.path, str(error)))
    if not rows and not broken:
        print(f"no runs below {args.dir} (train one with `dmlviz train`)")
        return 0
    if rows:
        print(format_table(rows))
    if died:
        print(f"\n{len(died)} run(s) died: status.json says running, but the process is gone")
        for path, pid in died:
            print(
                f"  {path} (pid {pid}): continue with dmlviz train --resume --out {shlex.quote(str(path))}"
            )
    if broken:
        print(f"\n{len(broken)} broken run(s):")
        for path, reason in broken:
            print(f"  {path}: {reason}")
    return 0


def embed_command(args: argparse.Namespace) -> int:
    """Write the embeddings of ``args.run``, or a zero-shot baseline; returns the exit code."""
    from dmlviz.runs import Run, embeddings_file

    if (args.run is None) == (args.dataset is None):
        raise ValueError("give a RUN to embed, or --dataset (and --out) for a zero-shot baseline")
    if args.run is None:
        return zero_shot.run(args)
    from dmlviz.train import embed_run, run_splits

    run = Run.load(args.run)
    splits = tuple(args.splits) if args.splits else run_splits(run)
    embed_run(run, splits, device=args.device)
    for split in splits:
        embeddings, _ = run.embeddings(split)
        print(f"{run.path / embeddings_file(split)}: {embeddings.shape[0]} x {embeddings.shape[1]}")
    return 0


def _row(summary: dict[str, Any]) -> dict[str, Any]:
    rate = summary.get("noise_rate") or 0.0
    noise = f"{rate:.3g} {summary.get('noise_kind') or ''}".strip() if rate else "0"
    epoch, epochs = summary.get("epoch"), summary.get("epochs")
    progress = f"{epoch if epoch is not None else '?'}/{epochs if epochs is not None else '?'}"
    if summary.get("imported"):
        progress = "imported"
    return {**summary, "noise": noise, "progress": progress}


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of run summaries as an aligned text table (``COLUMNS``, "train data" only when some
    run withheld part of its train split; "-" where unknown)."""
    withheld = any(row.get("train_fraction", 1.0) != 1 for row in rows)
    columns = [column for column in COLUMNS if withheld or column[0] != TRAIN_DATA]
    cells = [[title for title, _, _ in columns]]
    for row in rows:
        cells.append([_cell(row.get(key), fmt) for _, key, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)
