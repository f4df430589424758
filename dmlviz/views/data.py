"""What the pages load from run directories, as plain functions (the dashboard caches them).

Every loader goes through ``dmlviz.runs.Run``; ``file_stamp`` / ``runs_stamp`` give the cache keys
(file modification times), so a re-evaluated or re-projected run is picked up without a restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.registry.datasets import SPLITS as RUN_SPLITS
from dmlviz.runs import (
    SUMMARY_FILES,
    Run,
    RunError,
    eval_files,
    find_runs,
    projection_file,
    run_folders,
    split_files,
)
from dmlviz.runs.files import MAP_METHODS
from dmlviz.views.embedding_map import map_frame
from dmlviz.views.runs import runs_overview

SPLITS = tuple(
    sorted(RUN_SPLITS, key=lambda split: split != "test")
)  # test first: pages open on it


def file_stamp(run_path: str | Path, *relative: str) -> tuple[int, ...]:
    """Modification times (ns) of files of a run, 0 for a missing file: a cache key that changes
    whenever one of them is rewritten."""
    stamps = []
    for name in relative:
        try:
            stamps.append(os.stat(Path(run_path) / name).st_mtime_ns)
        except OSError:
            stamps.append(0)
    return tuple(stamps)


def runs_stamp(runs_dir: str | Path) -> tuple:
    """A cache key for everything ``list_runs`` reads below ``runs_dir``: the run folders found
    and the modification times of their summary files."""
    return tuple((str(f), *file_stamp(f, *SUMMARY_FILES)) for f in run_folders(runs_dir))


def list_runs(runs_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, broken)`` below ``runs_dir``: see ``dmlviz.views.runs.runs_overview``."""
    return runs_overview(find_runs(runs_dir))


def embedded_splits(run: Run) -> list[str]:
    """The splits of ``run`` that have embeddings, in ``SPLITS`` order."""
    return [split for split in SPLITS if run.has_embeddings(split)]


def map_methods(run: Run, split: str) -> list[str]:
    """The map methods stored for ``split`` (UMAP first). Only checks that the files exist."""
    return [m for m in MAP_METHODS if (run.path / projection_file(split, m)).exists()]


def split_stamp(run_path: str | Path, split: str) -> tuple[int, ...]:
    """Cache key of everything the map, lens and queries pages read for one split."""
    names = list(split_files(split, MAP_METHODS))
    if split == "query":  # evaluated against the gallery, stored as test (``eval_split``)
        names += eval_files("test")
    return file_stamp(run_path, *names)


@dataclass
class SplitData:
    """Everything about one split of one run that the pages show, loaded once (the embeddings
    themselves stay out: only the lens fallback and the anatomy page need them).

    ``labels``: clean labels; ``observed`` / ``flipped``: the labels the loss saw (train split of a
    run with ``labels.npz``), else None. ``neighbours`` / ``similarities``: the stored top-K table
    (None before evaluation), indexing ``reference_split``. ``problems``: what is missing, with the
    command that makes it.
    """

    run_path: str
    split: str
    labels: np.ndarray
    observed: np.ndarray | None = None
    flipped: np.ndarray | None = None
    metrics: dict[str, Any] | None = None
    per_query: pd.DataFrame | None = None
    neighbours: np.ndarray | None = None
    similarities: np.ndarray | None = None
    consistency: pd.DataFrame | None = None
    consistency_summary: dict[str, Any] | None = None
    reference_split: str = ""
    reference_labels: np.ndarray | None = None
    problems: list[str] = field(default_factory=list)

    def map_neighbours(self, query: int | None, k: int = 10) -> list[int] | None:
        """The stored ``k`` nearest neighbours of sample ``query`` that the map rings: None
        without a query, before evaluation, or when they index another split (a gallery)."""
        if query is None or self.neighbours is None or self.reference_split != self.split:
            return None
        return list(self.neighbours[query, :k]) if query < len(self.neighbours) else None


def load_split(run: Run, split: str) -> SplitData:
    """Load ``split`` of ``run`` (embeddings required; evaluation and labels when present).

    Raises ``RunError`` when the split has no embeddings or a file is corrupt.
    """
    labels = run.split_labels(split)
    data = SplitData(str(run.path), split, np.asarray(labels), reference_split=split)
    if split == "train":
        noisy = run.labels()
        if noisy is not None and len(noisy.observed) == len(labels):
            data.observed = np.asarray(noisy.observed)
            data.flipped = np.asarray(noisy.flipped, dtype=bool)
        stored = run.consistency()
        if stored is not None:
            data.consistency_summary, data.consistency = stored
    stored = eval_split(run, split)
    data.metrics = run.eval_metrics(stored)
    data.per_query = run.per_query(stored)
    table = run.neighbours(stored)
    if table is not None:
        data.neighbours, data.similarities = table
    if data.metrics is None or data.neighbours is None:
        data.problems.append(f"this split is not evaluated yet: run `dmlviz evaluate {run.path}`")
    reference = (data.metrics or {}).get("reference_split", split)
    if reference != split:
        data.reference_split = reference
        data.reference_labels = run.split_labels(reference)
    return data


def eval_split(run: Run, split: str) -> str:
    """Where ``split``'s evaluation is stored: its own name, except for queries searched in a
    gallery (In-Shop, imported query/gallery sets), which ``evaluate_run`` stores as ``test``."""
    if split == "query" and run.eval_metrics(split) is None:
        test = run.eval_metrics("test") or {}
        if test.get("query_split") == "query":
            return "test"
    return split


def load_map(
    run: Run, split: str, method: str, data: SplitData, class_names: list[str] | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The map frame (``dmlviz.views.embedding_map.map_frame``) of a stored projection, and its
    sidecar meta. Raises ``RunError`` when the map is missing."""
    stored = run.projection(split, method)
    if stored is None:
        raise RunError(
            f"{run.path} has no {method} map of its {split} split: run "
            f"`dmlviz project {run.path} --splits {split} --methods {method}`"
        )
    coords, meta = stored
    per_query = data.per_query if data.reference_split == split else None
    frame = map_frame(
        coords, data.labels, class_names, data.observed, data.flipped, per_query, data.consistency
    )
    return frame, meta


def class_names_or_none(dataset: Any) -> list[str] | None:
    """A dataset's class names, or None when there is no dataset."""
    return None if dataset is None else list(dataset.class_names)
