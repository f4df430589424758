"""Runs made from embeddings computed elsewhere (``dmlviz import``): no model, no training.

``import_embeddings`` checks every input first, then writes a run directory that evaluation,
projection and the dashboard read like a trained one: ``embeddings/<split>.npz``, ``labels.npz``
(with clean labels for the train split), ``images/<split>.parquet`` (the image paths, for
thumbnails) and ``imported.json`` (class names, sources, warnings). ``ImportedImages`` serves a
split's class names and thumbnails where a trained run rebuilds its dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image

from dmlviz import __version__
from dmlviz.runs.atomic import atomic_write_json, remove_made, staging_folder
from dmlviz.runs.readers import (
    ImportInputError,
    as_labels,
    missing_files,
    read_embeddings,
    read_image_paths,
    read_labels,
    read_oml_csv,
    rows_sharing_a_hash,
    unit_rows,
)
from dmlviz.runs.run import Run, RunError

if TYPE_CHECKING:
    from dmlviz.data import NoisyLabels

IMPORTED = "imported.json"
IMAGES = "images"  # images/<split>.parquet
BOX = ("x_1", "x_2", "y_1", "y_2")  # crop box columns of images/<split>.parquet (the OML CSV's)
THUMB_SIDE = 256  # px: imported images are shrunk to this before the thumbnail is made


@dataclass
class _Split:
    """One split as read: embeddings, labels as given, image paths (or None), crop boxes."""

    embeddings: np.ndarray
    labels: np.ndarray
    paths: np.ndarray | None = None
    boxes: pd.DataFrame | None = None
    clean: np.ndarray | None = None
    source: dict[str, str] | None = None


# (embeddings, labels, images or None) of one split
SplitFiles = tuple[str | Path | None, str | Path | None, str | Path | None]


def import_embeddings(
    out: str | Path,
    embeddings: str | Path | None = None,
    labels: str | Path | None = None,
    images: str | Path | None = None,
    csv: str | Path | None = None,
    train_embeddings: str | Path | None = None,
    train_labels: str | Path | None = None,
    train_images: str | Path | None = None,
    clean_labels: str | Path | None = None,
    name: str | None = None,
    dataset_root: str | Path | None = None,
    query: SplitFiles | None = None,
    gallery: SplitFiles | None = None,
) -> Run:
    """Make the run directory ``out`` from embeddings computed elsewhere; returns the ``Run``.

    Args:
        out: the new run's folder (must not exist, or be empty).
        embeddings: the evaluated samples' embeddings (``.npy``, ``.npz``, ``.safetensors``,
            ``.pt``, ``.parquet``), one row per sample. They are stored L2-normalised (retrieval
            is by cosine similarity, as for trained runs).
        labels: their labels (``.npy``, or text / CSV: one per line or a ``label`` column).
        images: a text file of their image paths, one per line (relative to its folder).
        csv: instead of ``labels`` and ``images`` (and ``train_labels``): an Open Metric Learning
            CSV. ``embeddings`` are its ``validation`` rows in file order, ``train_embeddings``
            its ``train`` rows. When its ``is_query`` / ``is_gallery`` flags split the validation
            rows, they are stored as splits ``query`` and ``gallery`` (evaluated query against
            gallery, like In-Shop); when every row is both, as ``test``.
        train_embeddings, train_labels, train_images: the same for the training samples (for
            neighbour consistency); ``train_labels`` are the labels the model was trained with.
        clean_labels: the training samples' true labels: the ones that differ from
            ``train_labels`` are marked flipped, and the noise detector is scored on them.
        name: the run's display name (default: the folder's name).
        dataset_root: the folder ``csv`` paths are relative to (default: the CSV's folder).
        query, gallery: instead of ``embeddings`` / ``labels`` / ``images``: ``(embeddings,
            labels, images or None)`` of the query and of the gallery samples, stored as splits
            ``query`` and ``gallery`` (each query searched in the gallery, like In-Shop).

    Raises ``ImportInputError`` (a ``ValueError``) naming the file and the problem, before
    anything is written: lengths that differ, NaN / infinite / zero rows, arrays that are not
    2-D, an empty file, a single class, a file that is not what its suffix says, an ``out``
    that cannot be written. Only warnings (``UserWarning`` and ``imported.json``'s
    ``warnings``): queries without another sample of their class to find (left out of MAP@R
    and R@1), and image paths that do not exist (their thumbnails are placeholders).
    """
    out = Path(out)
    _check_out(out)
    splits = _read_splits(
        embeddings=embeddings,
        labels=labels,
        images=images,
        csv=csv,
        train_embeddings=train_embeddings,
        train_labels=train_labels,
        train_images=train_images,
        clean_labels=clean_labels,
        dataset_root=dataset_root,
        query=query,
        gallery=gallery,
    )
    classes, codes = _encode(splits)
    dim = _common_dimension(splits)
    problems = _lone_queries(splits) + _missing_images(splits) + _duplicate_rows(splits)
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)

    noisy = _noisy_labels(splits, codes)
    config = _config(name or out.name, dim, splits, noisy)
    info = {
        "classes": [str(c) for c in classes],
        "splits": {split: s.source for split, s in splits.items()},
        "counts": {split: int(len(s.labels)) for split, s in splits.items()},
        "warnings": problems,
        "normalised": True,
    }
    _write_run(out, config, info, splits, codes, noisy)
    return Run.load(out)


def _config(
    name: str, dim: int, splits: dict[str, _Split], noisy: NoisyLabels | None
) -> dict[str, Any]:
    """The imported run's config: no model, no loss, its samples' fingerprint (``sample_set``)."""
    return {
        "name": name,
        "dataset": "imported",
        "model": None,
        "loss": None,
        "embedding_dim": dim,
        "imported": True,
        "sample_set": _fingerprint(splits),
        "noise_rate": None if noisy is None else noisy.rate,
        "noise_kind": None,
        "preset_source": "imported",
        "dmlviz_version": __version__,
    }


def _common_dimension(splits: dict[str, _Split]) -> int:
    """The embeddings' dimension; raises ``ImportInputError`` when the splits disagree on it."""
    dims = {split: s.embeddings.shape[1] for split, s in splits.items()}
    if len(set(dims.values())) > 1:
        raise ImportInputError(
            "the embeddings have different dimensions: "
            + ", ".join(f"{split} {dim}" for split, dim in dims.items())
        )
    return int(next(iter(dims.values())))


def _noisy_labels(splits: dict[str, _Split], codes: dict[str, np.ndarray]) -> NoisyLabels | None:
    """The train split's labels as trained with and as they truly are (given clean labels), with
    the ones that differ marked flipped; None without clean labels."""
    if "train" not in splits or splits["train"].clean is None:
        return None
    from dmlviz.data import NoisyLabels

    observed, clean = codes["train"], codes["train_clean"]
    flipped = observed != clean
    return NoisyLabels(observed, clean, flipped, float(flipped.mean()), "imported", 0)


def _write_run(
    out: Path,
    config: dict[str, Any],
    info: dict[str, Any],
    splits: dict[str, _Split],
    codes: dict[str, np.ndarray],
    noisy: NoisyLabels | None,
) -> None:
    """Write the run into a staging folder beside ``out`` and move it there when complete (none
    of it is left behind when something fails)."""
    staging, made = staging_folder(out, "importing")
    try:
        run = Run.create(staging, config)
        for split, data in splits.items():
            clean_codes = codes["train_clean"] if noisy is not None and split == "train" else None
            run.save_embeddings(
                split,
                unit_rows(data.embeddings),
                codes[split] if clean_codes is None else clean_codes,
            )
            if data.paths is not None:
                frame = pd.DataFrame({"path": data.paths})
                if data.boxes is not None:
                    frame = pd.concat([frame, data.boxes.reset_index(drop=True)], axis=1)
                run._save_parquet(f"{IMAGES}/{split}.parquet", frame)
        if noisy is not None:
            run.save_labels(noisy)
        atomic_write_json(staging / IMPORTED, info)
        run.set_status("finished", imported=True)
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made(made)
        raise


def imported_info(run: Run) -> dict[str, Any] | None:
    """``imported.json`` of an imported run (class names, sources, counts, warnings), else None."""
    return run._read_json(IMPORTED, required=False)


def is_imported(config: dict[str, Any]) -> bool:
    """Whether a run config belongs to an imported run (no model, no training)."""
    return bool(config.get("imported"))


# -- what the dashboard reads: class names and thumbnails -----------------------------------------


class ImportedImages:
    """One split of an imported run, where a trained run has its dataset: ``labels``,
    ``class_names``, ``sample_ids`` (the image paths, or ``row/<i>``) and ``image(i)`` for
    thumbnails (``ValueError`` when the run stores no image paths, ``OSError`` when the file
    cannot be read: the dashboard shows a placeholder)."""

    def __init__(
        self,
        split: str,
        labels: np.ndarray,
        class_names: Sequence[str],
        paths: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
    ):
        self.name = "imported"
        self.split = split
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.paths = paths
        self.boxes = boxes
        self.sample_ids = (
            list(paths) if paths is not None else [f"row/{i}" for i in range(len(self.labels))]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        """Sample ``i``'s image (cropped to its box), at most ``THUMB_SIDE`` px a side."""
        if self.paths is None:
            raise ValueError("this imported run stores no image paths")
        box = None if self.boxes is None else self.boxes[int(i)]
        with Image.open(self.paths[int(i)]) as image:
            if box is not None and not np.isnan(box).any():
                x_1, x_2, y_1, y_2 = (float(v) for v in box)
                image = image.crop((x_1, y_1, x_2, y_2))
            else:
                image.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at a reduced size
            image = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        return image

    def __repr__(self) -> str:
        return (
            f"ImportedImages(split={self.split!r}, n={len(self)}, images={self.paths is not None})"
        )


def imported_split(run: Run, split: str) -> ImportedImages:
    """The ``ImportedImages`` of ``split`` of an imported run. Raises ``RunError`` when the
    split has no embeddings or ``imported.json`` is missing."""
    info = imported_info(run)
    if info is None:
        raise RunError(f"{run.path / IMPORTED} is missing: import the embeddings again")
    labels = run.split_labels(split)
    frame = run._read_parquet(f"{IMAGES}/{split}.parquet")
    paths = boxes = None
    if frame is not None:
        if len(frame) != len(labels):
            raise RunError(
                f"{run.path / IMAGES / split}.parquet lists {len(frame)} images for "
                f"{len(labels)} embeddings: import the embeddings again"
            )
        paths = frame["path"].to_numpy(dtype=str)
        if all(c in frame for c in BOX):
            boxes = frame[list(BOX)].to_numpy(dtype=np.float64)
    return ImportedImages(split, labels, info["classes"], paths, boxes)


# -- reading and checking the inputs ---------------------------------------------------------------


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportInputError(
            f"{out} already exists and is not an empty folder; choose another --out or delete it"
        )


def _read_splits(
    *,
    embeddings,
    labels,
    images,
    csv,
    train_embeddings,
    train_labels,
    train_images,
    clean_labels,
    dataset_root,
    query=None,
    gallery=None,
) -> dict[str, _Split]:
    """Every split the inputs describe, read and checked for matching lengths."""
    _check_evaluated_given(embeddings, csv, query, gallery)
    if csv is not None:
        others = {
            "labels": labels,
            "images": images,
            "train_labels": train_labels,
            "train_images": train_images,
        }
        given = [name for name, value in others.items() if value is not None]
        if given:
            raise ImportInputError(
                f"the CSV gives the labels and image paths: drop {', '.join(given)}"
            )
        splits = _csv_splits(csv, embeddings, train_embeddings, dataset_root)
    else:
        splits = _evaluated_splits(embeddings, labels, images, query, gallery)
        splits |= _train_split(train_embeddings, train_labels, train_images)
    if clean_labels is not None:
        if "train" not in splits:
            raise ImportInputError("--clean-labels are the train split's: give its embeddings too")
        clean = read_labels(clean_labels)
        _same_length(splits["train"].labels, clean, "train labels", clean_labels)
        splits["train"].clean = clean
        splits["train"].source["clean_labels"] = str(clean_labels)
    _check_two_classes(splits)
    return splits


def _check_evaluated_given(embeddings, csv, query, gallery) -> None:
    """Raise ``ImportInputError`` unless the evaluated samples are given exactly one way."""
    if (query is None) != (gallery is None):
        raise ImportInputError(
            "give --query-embeddings and --gallery-embeddings together (queries are searched "
            "in the gallery)"
        )
    if query is not None and (embeddings is not None or csv is not None):
        raise ImportInputError(
            "give the evaluated samples once: --embeddings (each searched among the others), "
            "--csv, or --query-embeddings with --gallery-embeddings"
        )
    if query is None and embeddings is None:
        raise ImportInputError(
            "give the evaluated samples' embeddings: --embeddings, or --query-embeddings with "
            "--gallery-embeddings"
        )


def _evaluated_splits(embeddings, labels, images, query, gallery) -> dict[str, _Split]:
    """The evaluated samples given as files: ``query`` and ``gallery``, or ``test``."""
    if query is None:
        if labels is None:
            raise ImportInputError("give the embeddings' labels (--labels) or an OML CSV (--csv)")
        return {"test": _split(embeddings, labels, images)}
    if labels is not None or images is not None:
        raise ImportInputError(
            "--labels and --images go with --embeddings: give --query-labels, "
            "--gallery-labels (and --query-images, --gallery-images) instead"
        )
    splits = {}
    for split, files in (("query", query), ("gallery", gallery)):
        file, split_labels, split_images = files
        if file is None:
            raise ImportInputError(
                f"--{split}-labels and --{split}-images need --{split}-embeddings"
            )
        if split_labels is None:
            raise ImportInputError(f"give the {split} samples' labels (--{split}-labels)")
        splits[split] = _split(file, split_labels, split_images)
    return splits


def _train_split(train_embeddings, train_labels, train_images) -> dict[str, _Split]:
    """``{"train": split}`` when the training samples are given as files, else empty."""
    if (train_embeddings is None) != (train_labels is None):
        raise ImportInputError(
            "give --train-embeddings and --train-labels together (neighbour consistency needs both)"
        )
    if train_embeddings is not None:
        return {"train": _split(train_embeddings, train_labels, train_images)}
    if train_images is not None:
        raise ImportInputError("--train-images needs --train-embeddings and --train-labels")
    return {}


def _check_two_classes(splits: dict[str, _Split]) -> None:
    """Raise ``ImportInputError`` when a split to evaluate (query and gallery together) holds a
    single class."""
    evaluated = {
        split: s.labels for split, s in splits.items() if split not in ("query", "gallery")
    }
    if "query" in splits:
        evaluated["query and gallery"] = np.concatenate(
            [splits["query"].labels, splits["gallery"].labels]
        )
    for split, values in evaluated.items():
        observed = np.unique(values)
        if len(observed) < 2:
            raise ImportInputError(
                f"every label of the {split} split is {observed[0].item()!r}: retrieval needs at least "
                "two classes"
            )


def _split(embeddings, labels, images) -> _Split:
    array = read_embeddings(embeddings)
    label_values = read_labels(labels)
    _same_length(array, label_values, f"embeddings {embeddings}", labels)
    source = {"embeddings": str(embeddings), "labels": str(labels)}
    paths = None
    if images is not None:
        paths = read_image_paths(images)
        _same_length(array, paths, f"embeddings {embeddings}", images)
        source["images"] = str(images)
    return _Split(array, label_values, paths, source=source)


def _csv_splits(csv, embeddings, train_embeddings, dataset_root) -> dict[str, _Split]:
    rows = read_oml_csv(csv, dataset_root)
    boxes = [c for c in BOX if c in rows]
    splits: dict[str, _Split] = {}
    for split_name, file in (("validation", embeddings), ("train", train_embeddings)):
        if file is None:
            continue
        part = rows[rows["split"] == split_name].reset_index(drop=True)
        array = read_embeddings(file)
        if len(part) != len(array):
            raise ImportInputError(
                f"{file} has {len(array)} rows but {csv} has {len(part)} {split_name} rows; "
                f"the embeddings must be the CSV's {split_name} rows, in file order"
            )
        source = {"embeddings": str(file), "csv": str(csv)}
        if split_name == "train":
            labels = _as_label_values(part["label"])
            splits["train"] = _Split(array, labels, part["path"].to_numpy(), None, source=source)
            if boxes:
                splits["train"].boxes = part[boxes]
            continue
        # the reader refuses a mix: every row both, or each row one of them
        if (part["is_query"] & part["is_gallery"]).all():
            groups = {"test": np.ones(len(part), dtype=bool)}
        else:
            groups = {
                "query": part["is_query"].to_numpy(),
                "gallery": part["is_gallery"].to_numpy(),
            }
        labels = _as_label_values(part["label"])
        for name, mask in groups.items():
            selected = part[mask]
            splits[name] = _Split(
                array[mask],
                labels[mask],
                selected["path"].to_numpy(),
                selected[boxes] if boxes else None,
                source=dict(source),
            )
    return splits


def _as_label_values(column: pd.Series) -> np.ndarray:
    return as_labels(list(column))


def _same_length(first: np.ndarray, second: np.ndarray, first_name: str, second_file) -> None:
    if len(first) != len(second):
        raise ImportInputError(
            f"{first_name} has {len(first)} rows but {second_file} has {len(second)}; "
            "they must list the same samples in the same order"
        )


def _encode(splits: dict[str, _Split]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One class list for every split (sorted: numerically when all labels are integers) and each
    split's labels as int64 indices into it (``train_clean`` for the clean train labels)."""
    values = {split: s.labels for split, s in splits.items()}
    if "train" in splits and splits["train"].clean is not None:
        values["train_clean"] = splits["train"].clean
    if any(v.dtype.kind not in "iu" for v in values.values()):
        values = {key: v.astype(str) for key, v in values.items()}
    classes = np.unique(np.concatenate(list(values.values())))
    return classes, {key: np.searchsorted(classes, v).astype(np.int64) for key, v in values.items()}


def _lone_queries(splits: dict[str, _Split]) -> list[str]:
    """Warnings for queries with no other sample of their class to find: they are left out of
    MAP@R and R@1, which are undefined when that is every query of a split."""
    problems = []
    searches = {
        "test": ("test", "test", "no other sample of their class in the split"),
        "query": ("query", "gallery", "no sample of their class in the gallery"),
    }
    for name, (queries, references, match) in searches.items():
        if queries not in splits:
            continue
        labels = splits[queries].labels.astype(str)
        values, counts = np.unique(splits[references].labels.astype(str), return_counts=True)
        at = np.searchsorted(values, labels).clip(max=len(values) - 1)
        found = np.where(values[at] == labels, counts[at], 0)
        lone = found < (1 if queries != references else 2)  # a query is not its own match
        if lone.all():
            problems.append(
                f"all {len(labels)} queries of the {name} split have {match}, so retrieval has "
                "nothing to find: MAP@R and R@1 will be n/a (give at least two samples of some "
                "classes)"
            )
        elif lone.any():
            problems.append(
                f"{int(lone.sum())} of the {name} split's {len(labels)} queries have {match} "
                f"(first: {labels[np.argmax(lone)]}); they are left out of MAP@R and R@1"
            )
    return problems


def _missing_images(splits: dict[str, _Split]) -> list[str]:
    problems = []
    for split, data in splits.items():
        if data.paths is None:
            continue
        missing = missing_files(data.paths)
        if len(missing):
            problems.append(
                f"{len(missing)} of the {split} split's {len(data.paths)} image paths do not "
                f"exist (first: {data.paths[missing[0]]}); their thumbnails are placeholders"
            )
    return problems


def _duplicate_rows(splits: dict[str, _Split]) -> list[str]:
    """A warning per split whose embeddings repeat a row, with the count: identical rows tie, and
    ties count at their expected value (a random order of them), not as hits."""
    problems = []
    for split, data in splits.items():
        rows = np.ascontiguousarray(data.embeddings)
        shared = rows[rows_sharing_a_hash(rows)]  # a repeat shares its hash; the rest are distinct
        as_bytes = shared.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
        _, counts = np.unique(as_bytes, return_counts=True)
        repeats = int((counts[counts > 1] - 1).sum())
        if repeats:
            problems.append(
                f"{repeats} of the {split} split's {len(rows)} embeddings repeat an earlier row "
                f"({int((counts > 1).sum())} distinct rows occur more than once); identical rows "
                "tie, and the metrics count ties as a random order of them (docs/metrics.md)"
            )
    return problems


def _fingerprint(splits: dict[str, _Split]) -> str:
    """sha256 of each split's image paths (or, without images, its labels) in order: two imports
    of the same samples share it, so the dashboard compares them query by query."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        data = splits[split]
        items = data.paths if data.paths is not None else data.labels.astype(str)
        digest.update(json.dumps([split, data.paths is not None, list(map(str, items))]).encode())
    return digest.hexdigest()
