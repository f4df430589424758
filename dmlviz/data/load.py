"""``load_dataset``: one entry point for every dataset, split and protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dmlviz.data import digits, folder, official, omniglot
from dmlviz.data.dataset import ArrayDataset, ImageFileDataset, RetrievalDataset
from dmlviz.data.listing import (
    Listing,
    drop_unreadable,
    validation_fold_count,
    validation_mask,
    warn_single_image_classes,
)


@dataclass(frozen=True)
class _Format:
    list: Callable[..., Listing]  # (root, split, protocol, seed, download) -> Listing
    protocols: tuple[str, ...]  # the first is the default
    in_channels: int
    image_size: int  # default side of the model's input
    invert: bool = False  # grayscale files drawn dark on light: invert so ink is bright
    shared_class_protocols: tuple[str, ...] = ()  # whose test split holds the train classes


_FORMATS: dict[str, _Format] = {
    "digits": _Format(
        digits.list_digits, digits.PROTOCOLS, 1, 8, shared_class_protocols=("samples",)
    ),
    "omniglot": _Format(omniglot.list_omniglot, omniglot.PROTOCOLS, 1, 28, invert=True),
    "cub200": _Format(official.list_cub200, official.PROTOCOLS, 3, 224),
    "cars196": _Format(official.list_cars196, official.PROTOCOLS, 3, 224),
    "sop": _Format(official.list_sop, official.PROTOCOLS, 3, 224),
    "inshop": _Format(official.list_inshop, official.PROTOCOLS, 3, 224),
    "folder": _Format(folder.list_folder, folder.PROTOCOLS, 3, 224),
}
DATASETS: tuple[str, ...] = tuple(_FORMATS)
PROTOCOLS: dict[str, tuple[str, ...]] = {name: f.protocols for name, f in _FORMATS.items()}
SPLITS = ("train", "val", "test")
INSHOP_SPLITS = ("train", "val", "query", "gallery")


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
) -> RetrievalDataset:
    """One split of a dataset, yielding ``(float32 image (C, H, W), clean label, index)``.

    Args:
        name: one of ``DATASETS``: "digits" (scikit-learn's 8x8 digits, offline), "omniglot",
            "cub200", "cars196", "sop", "inshop" (official archive layouts) or "folder"
            (``<root>/<class>/<image>``).
        root: the dataset's folder (digits: unused; omniglot: also a folder above it or a .zip).
            When it is missing or wrong the error says where to download the data and which
            layout is expected.
        split: "train", "val" or "test"; inshop has "query" and "gallery" instead of "test".
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

    Returns:
        A ``RetrievalDataset`` whose labels are contiguous ``0..C-1`` within the split, with
        ``class_names[label]`` the dataset's own class names. Unreadable images are skipped with a
        warning (more than 1% of them raises ``BadImagesError``); classes with a single training
        image are reported with a warning.

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
    _check_split(name, split)
    if val_fraction is not None and val_fraction != 0:
        if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
            raise ValueError(f"val_fraction={val_fraction!r} is invalid: use a number in (0, 1)")
    elif split == "val":
        raise ValueError(
            f"split='val' needs val_fraction (the share of the training classes to hold out), "
            f"got {val_fraction!r}"
        )
    if image_size is None:
        image_size = fmt.image_size
    elif not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: use a positive int")

    base_split = "train" if split == "val" else split
    listing = fmt.list(root, base_split, protocol=protocol, seed=seed, download=download)
    if val_fraction and split in ("train", "val"):
        by_samples = validation_by_samples(name, protocol)
        held_out = validation_mask(listing.keys, val_fraction, seed, val_fold, by_samples)
        listing = listing.subset(held_out if split == "val" else ~held_out)
    if listing.array is None:
        listing = drop_unreadable(listing, name)
    if not listing.items:
        raise ValueError(f"the {split} split of {name} is empty (root {listing.root})")
    labels, class_names = listing.labels()
    if split == "train":
        warn_single_image_classes(labels, class_names, split)

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
    return ImageFileDataset(paths=listing.items, invert=fmt.invert, **common)


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
) -> int:
    """How many disjoint validation folds of ``val_fraction`` the train split holds (of its
    classes, or of each class's images under a protocol whose test split shares them)."""
    fmt = _FORMATS[name]
    protocol = fmt.protocols[0] if protocol is None else protocol
    listing = fmt.list(root, "train", protocol=protocol, seed=seed, download=False)
    return validation_fold_count(listing.keys, val_fraction, validation_by_samples(name, protocol))


def _check_split(name: str, split: str) -> None:
    if name == "inshop":
        if split == "test":
            raise ValueError(
                "split='test' is invalid for inshop: its test items come as two splits, "
                "split='query' (the queries) and split='gallery' (the images they search)"
            )
        allowed = INSHOP_SPLITS
    else:
        allowed = SPLITS
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
