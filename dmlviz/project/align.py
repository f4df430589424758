"""Put maps of the same samples in one frame, so two runs (two losses, two noise rates) can be
shown side by side with the same layout: Procrustes on the samples they share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import orthogonal_procrustes

from dmlviz.runs import Run

# Config keys that decide which samples a split holds: runs agreeing on them map the same samples
# (``sample_set``: an imported run's fingerprint of its image paths, see dmlviz.runs.imported).
SAMPLE_KEYS = (
    "dataset",
    "dataset_root",
    "protocol",
    "split_seed",
    "val_fraction",
    "val_fold",
    "sample_set",
)


def same_split_settings(first: dict, second: dict) -> bool:
    """Whether two run configs agree on every ``SAMPLE_KEYS`` setting (a run written before
    ``val_fold`` existed held out fold 0)."""

    def setting(config: dict, key: str):
        return config.get(key) or 0 if key == "val_fold" else config.get(key)

    return all(setting(first, key) == setting(second, key) for key in SAMPLE_KEYS)


def align_maps(
    reference_coords: np.ndarray, coords: np.ndarray, shared: np.ndarray | None = None
) -> np.ndarray:
    """``coords`` moved onto ``reference_coords`` by the rotation (or reflection), uniform scale
    and translation that best match them (least squares) on the shared rows.

    Row ``i`` of both arrays is the same sample. ``shared`` (boolean mask or row indices) limits
    the fit to some rows; the transform is applied to all rows. Returns ``(n, 2)`` float32.
    """
    reference = np.asarray(reference_coords, dtype=np.float64)
    moving = np.asarray(coords, dtype=np.float64)
    if reference.ndim != 2 or reference.shape != moving.shape:
        raise ValueError(
            f"maps must have the same (n, dims) shape, got {reference.shape} and {moving.shape}"
        )
    rows = np.arange(len(moving)) if shared is None else np.asarray(shared)
    if rows.dtype == bool:
        if rows.shape != (len(moving),):
            raise ValueError(f"a boolean shared mask must have {len(moving)} entries")
        rows = np.flatnonzero(rows)
    if len(rows) < 2:
        raise ValueError(f"need at least 2 shared samples to align maps, got {len(rows)}")
    reference_mean = reference[rows].mean(axis=0)
    moving_mean = moving[rows].mean(axis=0)
    a = reference[rows] - reference_mean
    b = moving[rows] - moving_mean
    norm = float((b**2).sum())
    if norm == 0.0:
        raise ValueError("the map to align has all shared samples at one point")
    rotation, singular_sum = orthogonal_procrustes(b, a)  # argmin_R ||b R - a||, R orthogonal
    scale = singular_sum / norm
    return ((moving - moving_mean) @ rotation * scale + reference_mean).astype(np.float32)


def same_samples(a: Run, b: Run, split: str) -> bool:
    """Whether two runs' ``split`` holds the same samples in the same order (same dataset split
    settings and identical label sequences in their embeddings)."""
    if not same_split_settings(a.config, b.config):
        return False
    if not (a.has_embeddings(split) and b.has_embeddings(split)):
        return False
    return bool(np.array_equal(a.embeddings(split)[1], b.embeddings(split)[1]))


def align_runs(
    runs: Sequence[Run], split: str = "test", method: str = "umap", reference: int = 0
) -> list[np.ndarray | None]:
    """Each run's stored ``split``/``method`` map aligned onto that of ``runs[reference]``.

    Runs without that map give None. Raises ``ValueError`` when a run maps different samples
    than the reference run (different dataset split), since their maps cannot be matched.
    """
    if not runs:
        return []
    if not 0 <= reference < len(runs):
        raise ValueError(f"reference must index one of the {len(runs)} runs, got {reference}")
    anchor = runs[reference]
    stored = anchor.projection(split, method)
    if stored is None:
        raise ValueError(
            f"{anchor.name} has no {split} {method} map: run `dmlviz project {anchor.path}`"
        )
    aligned: list[np.ndarray | None] = []
    for run in runs:
        found = run.projection(split, method)
        if found is None:
            aligned.append(None)
        elif run is anchor:
            aligned.append(found[0])
        elif not same_samples(anchor, run, split):
            raise ValueError(
                f"{run.name} and {anchor.name} map different {split} samples; "
                "only runs on the same dataset split can share a layout"
            )
        else:
            aligned.append(align_maps(stored[0], found[0]))
    return aligned
