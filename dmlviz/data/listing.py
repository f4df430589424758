"""What every format parser produces (a ``Listing``: which samples, of which classes) and the
steps shared by all datasets: class-disjoint splits, the validation classes, contiguous labels,
the image check, and the errors for a missing or malformed dataset."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

BAD_IMAGE_LIMIT = 0.01  # more than this fraction of unreadable images: refuse to load
SHOWN = 20  # names listed in a warning or error before "... and N more"
_READABLE: dict[Path, tuple[int, int]] = {}  # files that decoded, with their (size, mtime_ns)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """The dataset is not where ``root`` says, or not in its expected layout. The message says
    where to download it and which layout is expected. Also a ValueError, so the CLI reports it as
    a bad argument."""


class DatasetFormatError(ValueError):
    """An annotation file of the dataset does not parse; the message names the file and line."""


class BadImagesError(ValueError):
    """More than 1% of a split's images cannot be read; the message lists them."""


@dataclass(frozen=True)
class Listing:
    """One split of a dataset before any image is read.

    ``items`` holds a ``Path`` per sample for file-based sets, a row of ``array`` for in-memory
    ones. ``keys`` is each sample's dataset-wide class index and ``class_names`` maps such an index
    to the class's name. ``label_keys`` (optional) fixes the classes the labels count over, so
    splits that are searched against each other (a query and its gallery) share labels.
    ``boxes`` (optional) holds a crop box per sample, ``(left, upper, right, lower)`` in pixels
    or None for the whole image.
    """

    items: list
    sample_ids: list[str]
    keys: np.ndarray
    class_names: dict[int, str]
    root: Path | None = None
    array: np.ndarray | None = None
    label_keys: np.ndarray | None = None
    boxes: list[tuple[int, int, int, int] | None] | None = None

    def subset(self, mask: np.ndarray) -> Listing:
        """The samples where ``mask`` is True, in the same order."""
        where = np.flatnonzero(mask)
        return replace(
            self,
            items=[self.items[i] for i in where],
            sample_ids=[self.sample_ids[i] for i in where],
            keys=self.keys[where],
            boxes=None if self.boxes is None else [self.boxes[i] for i in where],
        )

    def labels(self) -> tuple[np.ndarray, list[str]]:
        """``(labels, class_names)``: the keys renumbered ``0..C-1`` in key order."""
        space = np.unique(self.keys if self.label_keys is None else self.label_keys)
        labels = np.searchsorted(space, self.keys).astype(np.int64)
        return labels, [self.class_names[int(k)] for k in space]


@dataclass(frozen=True)
class SplitLayout:
    """How a dataset's splits were drawn: ``name`` (recorded as ``split_layout`` in a run's
    config, e.g. "seeded class split", "train/test folders") and the splits it holds out for
    evaluation besides "train": ``("test",)``, or ``("query", "gallery")`` when queries are
    searched in a separate gallery, with "val" first when the data brings its own."""

    name: str
    held_out: tuple[str, ...] = ("test",)


def split_classes(
    keys: Sequence[int] | np.ndarray, fraction: float, seed: int | Sequence[int]
) -> np.ndarray:
    """A seeded random ``fraction`` of the distinct ``keys`` (rounded, at least one, and at least
    one left over), sorted. The same (keys, fraction, seed) always give the same classes."""
    distinct = np.unique(np.asarray(keys))
    if len(distinct) < 2:
        raise ValueError(
            f"a class-disjoint split needs at least 2 classes, the data has {len(distinct)}"
        )
    order = np.random.default_rng(seed).permutation(len(distinct))
    return np.sort(distinct[order[: validation_size(len(distinct), fraction)]])


def validation_size(count: int, fraction: float) -> int:
    """``fraction`` of ``count`` classes, rounded, at least one and at least one left over (the
    size of a class split, and of each validation fold)."""
    return min(max(round(fraction * count), 1), count - 1)


def validation_fold_count(keys: np.ndarray, val_fraction: float, by_samples: bool = False) -> int:
    """How many disjoint validation folds of ``val_fraction`` the samples with class ``keys``
    hold: folds of their classes, or with ``by_samples`` folds of each class's samples (the
    fewest any class holds)."""
    keys = np.asarray(keys)
    if not by_samples:
        count = len(np.unique(keys))
        return count // validation_size(count, val_fraction) if count >= 2 else 0
    sizes = np.unique(keys, return_counts=True)[1]
    if len(sizes) == 0 or sizes.min() < 2:
        return 0
    return int(min(n // _images_per_fold(int(n), val_fraction) for n in sizes))


def _images_per_fold(count: int, fraction: float) -> int:
    # Rounded down, so that a fraction of 1/K gives K folds for any class of K images or more.
    return min(max(int(fraction * count + 1e-9), 1), count - 1)


def validation_mask(
    keys: np.ndarray, val_fraction: float, seed: int, fold: int = 0, by_samples: bool = False
) -> np.ndarray:
    """Which samples (class ``keys``) the "val" split holds out of the train split.

    By classes: ``validation_classes``. With ``by_samples``, for a protocol whose test split
    shares the train classes: ``val_fraction`` of each class's samples, fold ``f`` being the
    ``f``-th cut of each class's samples in a permutation seeded by ``(seed, 1)``; every class
    stays in train. Either way different folds never share a sample and fold 0 does not depend
    on the number of folds.
    """
    keys = np.asarray(keys)
    if not by_samples:
        return np.isin(keys, validation_classes(keys, val_fraction, seed, fold))
    folds = validation_fold_count(keys, val_fraction, by_samples=True)
    _check_fold(fold, folds, val_fraction, "every training class's images")
    order = np.random.default_rng([seed, 1]).permutation(len(keys))
    held_out = np.zeros(len(keys), dtype=bool)
    for key in np.unique(keys):
        members = order[keys[order] == key]
        size = _images_per_fold(len(members), val_fraction)
        held_out[members[fold * size : (fold + 1) * size]] = True
    return held_out


def kept_fraction_mask(keys: np.ndarray, fraction: float, seed: int, minimum: int) -> np.ndarray:
    """Which training samples (class ``keys``) a run trains on when it keeps only ``fraction`` of
    each class's images: the first ``ceil(fraction * n)`` of a permutation of each class's ``n``
    samples, at least ``minimum`` of them (all when the class has fewer).

    The permutation is seeded by ``(seed, 2)`` (apart from the train/test and validation draws)
    and does not depend on ``fraction``, so for one seed a smaller fraction's samples lie inside
    a larger one's (the 25 % subset inside the 50 % one). ``fraction`` 1 keeps every sample.
    """
    keys = np.asarray(keys)
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction={fraction!r} is invalid: use a number in (0, 1]")
    kept = np.zeros(len(keys), dtype=bool)
    order = np.random.default_rng([seed, 2]).permutation(len(keys))
    for key in np.unique(keys):
        members = order[keys[order] == key]
        size = max(math.ceil(fraction * len(members) - 1e-9), minimum)
        kept[members[:size]] = True
    return kept


def validation_classes(
    keys: np.ndarray, val_fraction: float, seed: int, fold: int = 0
) -> np.ndarray:
    """The training classes held out as the "val" split: ``val_fraction`` of them, sorted.

    The classes are shuffled by a generator seeded by ``(seed, 1)`` (so the draw differs from the
    train/test one) and cut into consecutive folds of that size: fold ``f`` is the ``f``-th cut,
    so different folds never share a class and fold 0 is the same at any fold count.
    """
    distinct = np.unique(keys)
    if len(distinct) < 2:
        raise ValueError(
            f"val_fraction={val_fraction!r} needs at least 2 training classes, there are "
            f"{len(distinct)}"
        )
    folds = validation_fold_count(keys, val_fraction)
    _check_fold(fold, folds, val_fraction, f"{len(distinct)} training classes")
    size = validation_size(len(distinct), val_fraction)
    order = np.random.default_rng([seed, 1]).permutation(len(distinct))
    return np.sort(distinct[order[fold * size : (fold + 1) * size]])


def _check_fold(fold: int, folds: int, val_fraction: float, what: str) -> None:
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < folds:
        raise ValueError(
            f"val_fold={fold!r} is invalid: {what} hold {folds} disjoint folds of "
            f"val_fraction={val_fraction!r}; use 0 to {folds - 1}"
        )


def _shown(names: Sequence[str]) -> str:
    listed = ", ".join(str(n) for n in names[:SHOWN])
    return listed + (f", ... and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _checked(path: Path) -> bool:
    """Whether ``path`` decoded before in this process and has not changed since (same size
    and modification time)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    return _READABLE.get(path) == (stat.st_size, stat.st_mtime_ns)


def _unreadable(path: Path) -> bool:
    """True when PIL cannot decode the file: missing, not an image, or cut short.

    A PNG is verified (every chunk read and its CRC checked up to IEND, nothing inflated), a JPEG
    decoded at 1/8 scale (``draft``: every coded block is still read), any other format decoded.
    A file found readable is remembered with its size and modification time (``_checked``)."""
    try:
        stat = path.stat()
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()
            else:
                image.draft(image.mode, (1, 1))
                image.load()
    except Exception:  # PIL raises many types (OSError, SyntaxError, struct.error) for a bad file
        return True
    _READABLE[path] = (stat.st_size, stat.st_mtime_ns)
    return False


def drop_unreadable(listing: Listing, dataset: str) -> Listing:
    """``listing`` without the images PIL cannot decode (missing, not images, or truncated), with
    one warning naming them; raises BadImagesError when more than 1% are bad.

    Each file is decoded once per process (``_unreadable``; on 2 busy cores about 0.08-0.3 ms a
    64 px PNG or JPEG and 0.4-1 ms a 500 x 375 JPEG), in a few threads for large splits; files
    already checked cost one ``stat``."""
    paths = listing.items
    bad = np.zeros(len(paths), dtype=bool)
    todo = [i for i, path in enumerate(paths) if not _checked(path)]
    if len(todo) > 2000:
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
            bad[todo] = list(pool.map(_unreadable, [paths[i] for i in todo], chunksize=256))
    else:
        bad[todo] = [_unreadable(paths[i]) for i in todo]
    if not bad.any():
        return listing
    names = [listing.sample_ids[i] for i in np.flatnonzero(bad)]
    where = f"{dataset} images under {listing.root}" if listing.root else f"{dataset} images"
    if bad.mean() > BAD_IMAGE_LIMIT:
        raise BadImagesError(
            f"{len(names)} of {len(paths)} {where} are missing or unreadable (more than "
            f"{BAD_IMAGE_LIMIT:.0%}); fix or re-download the dataset: {_shown(names)}"
        )
    warnings.warn(
        f"skipping {len(names)} unreadable {where}: {_shown(names)}", RuntimeWarning, stacklevel=3
    )
    return listing.subset(~bad)


def warn_single_image_classes(labels: np.ndarray, class_names: list[str], split: str) -> None:
    """One warning naming the classes of a training split that have a single image (their only
    positive pair is the image with itself, so they add nothing to a pair-based loss)."""
    counts = np.bincount(labels, minlength=len(class_names))
    single = [class_names[c] for c in np.flatnonzero(counts == 1)]
    if single:
        warnings.warn(
            f"{len(single)} classes of the {split} split have a single image: {_shown(single)}",
            RuntimeWarning,
            stacklevel=3,
        )


def image_files(folder: Path) -> list[Path]:
    """Image files (by extension) anywhere under ``folder``, hidden ones excluded, sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def find_root(root: Path, markers: Sequence[str], subfolders: Sequence[str] = ()) -> Path | None:
    """The first of ``root``, ``root/<subfolder>`` and ``root``'s child folders that holds every
    path in ``markers``; None when there is none."""
    candidates = [root, *(root / s for s in subfolders)]
    if root.is_dir():
        candidates += sorted(p for p in root.iterdir() if p.is_dir())
    for folder in candidates:
        if all((folder / m).exists() for m in markers):
            return folder
    return None


def cache_dir() -> Path:
    """Where dmlviz unpacks and downloads data: ``$DMLVIZ_CACHE_DIR`` or ``~/.cache/dmlviz``."""
    return Path(os.environ.get("DMLVIZ_CACHE_DIR") or Path.home() / ".cache" / "dmlviz")


def missing(dataset: str, root: Path | str | None, how: str, layout: str) -> DatasetNotFoundError:
    """The error for a dataset that is not at ``root``: ``how`` to get it (a sentence) and the
    layout expected."""
    where = "no root was given" if root is None else f"nothing usable at {root}"
    return DatasetNotFoundError(
        f"{dataset}: {where}. {how} Pass its folder as root=<folder> (--dataset-root on the "
        f"command line). Expected layout:\n{layout}"
    )


def malformed(path: Path, line: int, text: str, expected: str) -> DatasetFormatError:
    """The error for a line of an annotation file that does not parse."""
    return DatasetFormatError(
        f"{path}, line {line}: cannot parse {text.strip()!r}; expected {expected}"
    )
