"""``load_dataset``: one entry point for every dataset, split and protocol."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dmlviz.data import digits, folder, official, omniglot, table
from dmlviz.data.dataset import ArrayDataset, ImageFileDataset, RetrievalDataset
from dmlviz.data.listing import (
    DatasetNotFoundError,
    Listing,
    SplitLayout,
    drop_unreadable,
    validation_fold_count,
    validation_mask,
    warn_single_image_classes,
)


@dataclass(frozen=True)
class _Format:
    list: Callable[..., Listing]  # (root, split, protocol, seed, download[, test_root])
    protocols: tuple[str, ...]  # the first is the default
    in_channels: int
    image_size: int  # default side of the model's input
    invert: bool = False  # grayscale files drawn dark on light: invert so ink is bright
    shared_class_protocols: tuple[str, ...] = ()  # whose test split holds the train classes
    # (root, test_root) -> how its splits are drawn; a fixed layout for the official archives
    layout: Callable[..., SplitLayout] = lambda root, test_root: OFFICIAL
    test_root: bool = False  # whether list takes a test_root (a second tree that tests)


OFFICIAL = SplitLayout("official split")
OFFICIAL_QUERY_GALLERY = SplitLayout("official split", ("query", "gallery"))
PROTOCOL_SPLIT = SplitLayout("protocol split")  # digits: as its protocol key says
_FORMATS: dict[str, _Format] = {
    "digits": _Format(
        digits.list_digits,
        digits.PROTOCOLS,
        1,
        8,
        shared_class_protocols=("samples",),
        layout=lambda root, test_root: PROTOCOL_SPLIT,
    ),
    "omniglot": _Format(
        omniglot.list_omniglot,
        omniglot.PROTOCOLS,
        1,
        28,
        invert=True,
        layout=omniglot.omniglot_layout,
        test_root=True,
    ),
    "cub200": _Format(official.list_cub200, official.PROTOCOLS, 3, 224),
    "cars196": _Format(official.list_cars196, official.PROTOCOLS, 3, 224),
    "sop": _Format(official.list_sop, official.PROTOCOLS, 3, 224),
    "inshop": _Format(
        official.list_inshop,
        official.PROTOCOLS,
        3,
        224,
        layout=lambda root, test_root: OFFICIAL_QUERY_GALLERY,
    ),
    "folder": _Format(
        folder.list_folder,
        folder.PROTOCOLS,
        3,
        224,
        layout=folder.folder_layout,
        test_root=True,
    ),
    "csv": _Format(table.list_table, table.PROTOCOLS, 3, 224, layout=table.table_layout),
}
DATASETS: tuple[str, ...] = tuple(_FORMATS)
PROTOCOLS: dict[str, tuple[str, ...]] = {name: f.protocols for name, f in _FORMATS.items()}
TEST_ROOT_DATASETS: tuple[str, ...] = tuple(n for n, f in _FORMATS.items() if f.test_root)


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

    Returns:
        A ``RetrievalDataset`` whose labels are contiguous ``0..C-1`` within the split (query and
        gallery share theirs), with ``class_names[label]`` the dataset's own class names.
        Unreadable images (truncated ones included) are skipped with a warning (more than 1% of
        them raises ``BadImagesError``); classes with a single training image are reported with
        a warning.

    Label noise is not applied here: inject it into the train split's labels with
    ``inject_label_noise`` (the clean labels stay on the dataset).
    """
    if name not in _FORMATS:
        raise ValueError(f"dataset={name!r} is invalid: use one of {', '.join(DATASETS)}")
    fmt = _FORMATS[name]
    protocol = fmt.protocols[0] if protocol is None else protocol
    if protocol not in fmt.protocols:
        raise ValueError(
            f"protocol={protocol!r} is invalid for {name}: use one of {', '.join(fmt.protocols)}"
        )
    if test_root is not None and not fmt.test_root:
        raise ValueError(
            f"test_root is only for {', '.join(TEST_ROOT_DATASETS)}, not {name} (its test split "
            "comes from its own files)"
        )
    if test_root is not None and not Path(test_root).expanduser().exists():
        raise DatasetNotFoundError(
            f"{name}: the test root {test_root} does not exist (test_root=, --test-root on the "
            "command line): give the folder whose classes form the test split"
        )
    if name == "digits" and root is not None:
        warnings.warn(
            f"root={str(root)!r} is ignored: digits ships with scikit-learn", stacklevel=2
        )
    given = split_layout(name, root, test_root).held_out
    if val_fraction is not None and val_fraction != 0:
        if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
            raise ValueError(f"val_fraction={val_fraction!r} is invalid: use a number in (0, 1)")
    elif split == "val" and "val" not in given:
        raise ValueError(
            f"split='val' needs val_fraction (the share of the training classes to hold out), "
            f"got {val_fraction!r}"
        )
    _check_split(name, split, given)
    if image_size is None:
        image_size = fmt.image_size
    elif not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: use a positive int")

    base_split = "train" if split == "val" and val_fraction else split
    extra = {"test_root": test_root} if test_root is not None else {}
    listing = fmt.list(root, base_split, protocol=protocol, seed=seed, download=download, **extra)
    if val_fraction and split in ("train", "val"):
        by_samples = validation_by_samples(name, protocol)
        held_out = validation_mask(listing.keys, val_fraction, seed, val_fold, by_samples)
        listing = listing.subset(held_out if split == "val" else ~held_out)
    if listing.array is None:
        listing = drop_unreadable(listing, name)
    if not listing.items:
        rows = _rows_of(name, split)
        raise ValueError(
            f"the {split} split of {name} is empty (root {listing.root}"
            + (f"): it is {rows}; add some" if rows else ")")
        )
    labels, class_names = listing.labels()
    if split == "train":
        warn_single_image_classes(labels, class_names, split)
    elif split in ("test", "gallery") and len(np.unique(labels)) < 2:
        raise ValueError(
            f"every image of the {split} split of {name} (root {listing.root}"
            f"{', ' + _rows_of(name, split) if _rows_of(name, split) else ''}) is of class "
            f"{class_names[labels[0]]!r}: retrieval needs "
            "at least two classes to tell apart; give the split images of other classes too"
        )

    common = {
        "name": name,
        "split": split,
        "protocol": protocol,
        "labels": labels,
        "class_names": class_names,
        "sample_ids": listing.sample_ids,
        "in_channels": fmt.in_channels,
        "image_size": image_size,
        "augment": bool(augment),
        "root": listing.root,
    }
    if listing.array is not None:
        thumbnails = listing.array[np.asarray(listing.items)]
        return ArrayDataset(
            images=_image_tensor(thumbnails, image_size), thumbnails=thumbnails, **common
        )
    return ImageFileDataset(paths=listing.items, invert=fmt.invert, boxes=listing.boxes, **common)


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
    if name not in _FORMATS:
        raise ValueError(f"dataset={name!r} is invalid: use one of {', '.join(DATASETS)}")
    return _FORMATS[name].layout(root, test_root)


def validation_by_samples(name: str, protocol: str | None = None) -> bool:
    """Whether the "val" split of ``name`` under ``protocol`` holds out images of every train
    class (a protocol whose test split shares the train classes) rather than whole classes."""
    fmt = _FORMATS[name]
    return (fmt.protocols[0] if protocol is None else protocol) in fmt.shared_class_protocols


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
    fmt = _FORMATS[name]
    protocol = fmt.protocols[0] if protocol is None else protocol
    extra = {"test_root": test_root} if fmt.test_root and test_root is not None else {}
    listing = fmt.list(root, "train", protocol=protocol, seed=seed, download=False, **extra)
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
