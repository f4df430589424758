"""``load_dataset``: one entry point for every dataset, split and protocol.

Each dataset's loader, protocols, input and layout are its entry in ``dmlviz.registry.datasets``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from dmlviz.data import table
from dmlviz.data.dataset import ArrayDataset, ImageFileDataset, RetrievalDataset
from dmlviz.data.listing import (
    DatasetNotFoundError,
    Listing,
    SplitLayout,
    drop_unreadable,
    kept_fraction_mask,
    validation_fold_count,
    validation_mask,
    warn_single_image_classes,
)
from dmlviz.registry.datasets import DATASET_ENTRIES, DATASETS, TEST_ROOT_DATASETS, DatasetEntry


def load_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    protocol: str | None = None,
    seed: int = 0,
    augment: bool = False,
    image_size: int | None = None,
    val_fraction: float | None = None,
    val_fold: int = 0,
    download: bool = False,
    test_root: str | Path | None = None,
    train_fraction: float = 1.0,
    fraction_seed: int = 0,
    min_per_class: int = 1,
) -> RetrievalDataset:
    """One split of a dataset, yielding ``(float32 image (C, H, W), clean label, index)``.

    Args:
        name: one of ``DATASETS``: "digits" (scikit-learn's 8x8 digits, offline), "omniglot",
            "cub200", "cars196", "sop", "inshop" (official archive layouts), "folder"
            (``<root>/<class>/<image>``, or split folders ``<root>/train/<class>/<image>``, ...)
            or "csv" (a table in Open Metric Learning's format, see ``dmlviz.data.table``).
        root: the dataset's folder (digits: unused; omniglot: also a folder above it or a .zip;
            csv: the folder of ``df.csv`` or the CSV file). When it is missing or wrong the error
            says where to download the data and which layout is expected.
        split: "train", "val" or "test"; a dataset whose queries search a separate gallery
            (``split_layout(...).held_out``: inshop, folder with query/ and gallery/ folders, csv
            with query/gallery flags) has "query" and "gallery" instead of "test".
        protocol: how classes are split, one of ``PROTOCOLS[name]`` (None: the first). Every
            protocol but digits' "samples" is class-disjoint.
        seed: seeds the random class splits (omniglot, folder, digits "samples") and the choice of
            validation classes. The official splits of cub200/cars196/sop/inshop are fixed.
        augment: random augmentation (train-time): crop + flip for RGB sets, a shift of a few
            pixels for the grayscale ones.
        image_size: side of the square model input (None: 8 for digits, 28 for omniglot, 224
            for the RGB sets).
        val_fraction: when set, a seeded ``val_fraction`` of the TRAIN classes forms split "val"
            and split "train" leaves them out; so the validation split is like the test split,
            under digits' "samples" protocol (test images of the train digits) it is
            ``val_fraction`` of each train digit's images instead. Required for split "val".
        val_fold: which of the disjoint validation folds of that size to hold out (0 to
            ``validation_folds(name, val_fraction, ...) - 1``), for cross-validation.
        download: fetch the data when the format allows it (omniglot, via torchvision).
        test_root: folder and omniglot only: a second tree whose classes form the test split,
            while every class of ``root`` trains (classes matched by name).
        train_fraction: split "train" keeps only this share of each class's images (at least
            ``min_per_class`` of them, or all when the class has fewer), drawn with
            ``fraction_seed`` and nested across fractions (``listing.kept_fraction_mask``); the
            validation split is carved out first and, like the test split, keeps every image.

    Returns:
        A ``RetrievalDataset`` whose labels are contiguous ``0..C-1`` within the split (query and
        gallery share theirs), with ``class_names[label]`` the dataset's own class names.
        Unreadable images (truncated ones included) are skipped with a warning (more than 1% of
        them raises ``BadImagesError``); classes with a single training image are reported with
        a warning.

    Label noise is not applied here: inject it into the train split's labels with
    ``inject_label_noise`` (the clean labels stay on the dataset).
    """
    entry = _entry(name)
    protocol = _protocol(entry, protocol)
    _check_test_root(entry, test_root)
    if not entry.needs_root and root is not None:
        warnings.warn(
            f"root={str(root)!r} is ignored: {name} ships with scikit-learn", stacklevel=2
        )
    held_out = split_layout(name, root, test_root).held_out
    _check_validation(split, val_fraction, held_out)
    _check_split(name, split, held_out)
    image_size = _image_side(entry, image_size)
    listing = _split_listing(
        entry, root, split, protocol, seed, val_fraction, val_fold, download, test_root
    )
    if split == "train" and train_fraction != 1:
        kept = kept_fraction_mask(listing.keys, train_fraction, fraction_seed, min_per_class)
        listing = listing.subset(kept)
    labels, class_names = _split_labels(listing, name, split)
    return _dataset(entry, listing, split, protocol, labels, class_names, image_size, augment)


def _entry(name: str) -> DatasetEntry:
    """The registry entry of dataset ``name``; ``ValueError`` naming the choices if unknown."""
    if name not in DATASET_ENTRIES:
        raise ValueError(f"dataset={name!r} is invalid: use one of {', '.join(DATASETS)}")
    return DATASET_ENTRIES[name]


def _protocol(entry: DatasetEntry, protocol: str | None) -> str:
    """``protocol``, or the dataset's default for None; ``ValueError`` for one it lacks."""
    protocol = entry.protocols[0] if protocol is None else protocol
    if protocol not in entry.protocols:
        raise ValueError(
            f"protocol={protocol!r} is invalid for {entry.name}: use one of "
            f"{', '.join(entry.protocols)}"
        )
    return protocol


def _check_test_root(entry: DatasetEntry, test_root: str | Path | None) -> None:
    if test_root is not None and not entry.test_root:
        raise ValueError(
            f"test_root is only for {', '.join(TEST_ROOT_DATASETS)}, not {entry.name} (its test "
            "split comes from its own files)"
        )
    if test_root is not None and not Path(test_root).expanduser().exists():
        raise DatasetNotFoundError(
            f"{entry.name}: the test root {test_root} does not exist (test_root=, --test-root on "
            "the command line): give the folder whose classes form the test split"
        )


def _check_validation(split: str, val_fraction: float | None, held_out: tuple[str, ...]) -> None:
    """A validation share in (0, 1), given whenever split "val" must be carved from "train"."""
    if val_fraction is not None and val_fraction != 0:
        if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
            raise ValueError(f"val_fraction={val_fraction!r} is invalid: use a number in (0, 1)")
    elif split == "val" and "val" not in held_out:
        raise ValueError(
            f"split='val' needs val_fraction (the share of the training classes to hold out), "
            f"got {val_fraction!r}"
        )


def _image_side(entry: DatasetEntry, image_size: int | None) -> int:
    """The model input's side in pixels: ``image_size``, or the dataset's for None."""
    if image_size is None:
        return entry.image_size
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: use a positive int")
    return image_size


def _split_listing(
    entry: DatasetEntry,
    root: str | Path | None,
    split: str,
    protocol: str,
    seed: int,
    val_fraction: float | None,
    val_fold: int,
    download: bool,
    test_root: str | Path | None,
) -> Listing:
    """The files (or array rows) of ``split``: "val" and "train" carved from the loader's train
    split when ``val_fraction`` is set, unreadable images dropped; ``ValueError`` when empty."""
    base_split = "train" if split == "val" and val_fraction else split
    extra = {"test_root": test_root} if test_root is not None else {}
    listing = entry.load()(
        root, base_split, protocol=protocol, seed=seed, download=download, **extra
    )
    if val_fraction and split in ("train", "val"):
        by_samples = validation_by_samples(entry.name, protocol)
        held_out = validation_mask(listing.keys, val_fraction, seed, val_fold, by_samples)
        listing = listing.subset(held_out if split == "val" else ~held_out)
    if listing.array is None:
        listing = drop_unreadable(listing, entry.name)
    if not listing.items:
        rows = _rows_of(entry.name, split)
        raise ValueError(
            f"the {split} split of {entry.name} is empty (root {listing.root}"
            + (f"): it is {rows}; add some" if rows else ")")
        )
    return listing


def _split_labels(listing: Listing, name: str, split: str) -> tuple[np.ndarray, list[str]]:
    """``(labels, class_names)`` of a split's listing: single-image training classes warned
    about, a test split or gallery of one class refused (retrieval needs two)."""
    labels, class_names = listing.labels()
    if split == "train":
        warn_single_image_classes(labels, class_names, split)
    elif split in ("test", "gallery") and len(np.unique(labels)) < 2:
        rows = _rows_of(name, split)
        raise ValueError(
            f"every image of the {split} split of {name} (root {listing.root}"
            f"{', ' + rows if rows else ''}) is of class {class_names[labels[0]]!r}: retrieval "
            "needs at least two classes to tell apart; give the split images of other classes too"
        )
    return labels, class_names


def _dataset(
    entry: DatasetEntry,
    listing: Listing,
    split: str,
    protocol: str,
    labels: np.ndarray,
    class_names: list[str],
    image_size: int,
    augment: bool,
) -> RetrievalDataset:
    """The split as a dataset: images held in memory for an array listing (digits), read from
    their files on access otherwise."""
    common = {
        "name": entry.name,
        "split": split,
        "protocol": protocol,
        "labels": labels,
        "class_names": class_names,
        "sample_ids": listing.sample_ids,
        "in_channels": entry.in_channels,
        "image_size": image_size,
        "augment": bool(augment),
        "root": listing.root,
    }
    if listing.array is not None:
        thumbnails = listing.array[np.asarray(listing.items)]
        return ArrayDataset(
            images=_image_tensor(thumbnails, image_size), thumbnails=thumbnails, **common
        )
    return ImageFileDataset(paths=listing.items, invert=entry.invert, boxes=listing.boxes, **common)


def _rows_of(name: str, split: str) -> str:
    """Where a held-out split of ``name`` comes from, for messages: the csv format's ``split``
    column value (its test split is the rows marked ``validation``); empty for the others."""
    if name != "csv" or split not in ("test", "query", "gallery"):
        return ""
    flag = "" if split == "test" else f" and is_{split} True"
    return f"the CSV rows with split {table.SPLITS[1]!r}{flag}"


def split_layout(
    name: str, root: str | Path | None = None, test_root: str | Path | None = None
) -> SplitLayout:
    """How the splits of ``name`` at ``root`` (and ``test_root``) are drawn: the layout's name
    (recorded as ``split_layout`` in a run's config) and its held-out splits besides "train"
    (``("test",)``, ``("query", "gallery")``, with "val" first when the data has its own)."""
    entry = _entry(name)
    layout = entry.layout_function()
    return layout(root, test_root) if layout else SplitLayout(entry.layout_name, entry.held_out)


def validation_by_samples(name: str, protocol: str | None = None) -> bool:
    """Whether the "val" split of ``name`` under ``protocol`` holds out images of every train
    class (a protocol whose test split shares the train classes) rather than whole classes."""
    entry = DATASET_ENTRIES[name]
    return (entry.protocols[0] if protocol is None else protocol) in entry.shared_class_protocols


def validation_folds(
    name: str,
    val_fraction: float,
    root: str | Path | None = None,
    protocol: str | None = None,
    seed: int = 0,
    test_root: str | Path | None = None,
) -> int:
    """How many disjoint validation folds of ``val_fraction`` the train split holds (of its
    classes, or of each class's images under a protocol whose test split shares them)."""
    entry = DATASET_ENTRIES[name]
    protocol = entry.protocols[0] if protocol is None else protocol
    extra = {"test_root": test_root} if entry.test_root and test_root is not None else {}
    listing = entry.load()(root, "train", protocol=protocol, seed=seed, download=False, **extra)
    return validation_fold_count(listing.keys, val_fraction, validation_by_samples(name, protocol))


def _check_split(name: str, split: str, held_out: tuple[str, ...]) -> None:
    if split == "test" and "query" in held_out:
        raise ValueError(
            f"split='test' is invalid for this {name} dataset: its test items come as two "
            "splits, split='query' (the queries) and split='gallery' (the images they search)"
        )
    allowed = ("train", "val", *[s for s in held_out if s != "val"])
    if split not in allowed:
        raise ValueError(f"split={split!r} is invalid for {name}: use one of {', '.join(allowed)}")


def _image_tensor(images: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 ``(n, h, w)`` -> float32 ``(n, 1, image_size, image_size)`` in [0, 1], resized
    (bilinear) when ``image_size`` is not the images' own side."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float().div_(255)
    if tensor.shape[-1] != image_size or tensor.shape[-2] != image_size:
        tensor = torch.nn.functional.interpolate(
            tensor, size=(image_size, image_size), mode="bilinear", align_corners=False
        )
    return tensor.contiguous()
