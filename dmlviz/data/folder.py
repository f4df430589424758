"""Any folder of images sorted into one subfolder per class: ``<root>/<class>/<image>``.

Images may sit at any depth below their class folder; hidden files and folders are ignored. Images
are read as RGB. The splits come from, in this order:

- ``test_root``: every class of ``root`` trains, every class of ``test_root`` tests;
- split folders in ``root``: ``train/`` and ``test/`` (or ``query/`` and ``gallery/``, searched
  one against the other), optionally ``val/``, each ``<split>/<class>/<image>``, used as given;
- otherwise a seeded random half of the classes trains and the rest tests (protocol "classes").

Classes of different trees are matched by name, so a class may occur in several splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmlviz.data.listing import (
    IMAGE_EXTENSIONS,
    DatasetNotFoundError,
    Listing,
    SplitLayout,
    image_files,
    missing,
    split_classes,
)

TRAIN_FRACTION = 0.5
SPLIT_FOLDERS = ("train", "val", "test", "query", "gallery")
SEEDED = SplitLayout("seeded class split")
TEST_TREE = SplitLayout("separate test tree")
HOW = "Put the images of each class in a subfolder named after the class."
LAYOUT = (
    "  <root>/<class name>/<image>   (at least 2 classes; extensions "
    + " ".join(IMAGE_EXTENSIONS)
    + ")\n  or <root>/train/<class name>/<image> and <root>/test/<class name>/<image> (optionally "
    "val/; query/ and gallery/ instead of test/)"
)


def list_folder(
    root: Path | None,
    split: str,
    protocol: str,
    seed: int,
    download: bool,
    test_root: Path | None = None,
) -> Listing:
    """The images of ``split``, from the trees the module docstring lists; class key = rank of
    the class name among all trees' classes (the seeded split: among ``root``'s). ``download``
    plays no part."""
    root = _tree(root)
    trees = _trees(root, test_root)
    if trees is None:
        return _seeded(root, split, seed)
    files = {name: _class_files(tree) for name, tree in trees.items()}
    names = sorted({c for classes in files.values() for c in classes})
    key_of = {name: k for k, name in enumerate(names)}
    items, sample_keys = [], []
    for name, found in files[split].items():
        items += found
        sample_keys += [key_of[name]] * len(found)
    label_keys = None
    if split in ("query", "gallery"):
        label_keys = np.asarray(sorted(key_of[c] for c in {*files["query"], *files["gallery"]}))
    base = root if test_root is None else trees[split]
    return Listing(
        items=items,
        sample_ids=[p.relative_to(base).as_posix() for p in items],
        keys=np.asarray(sample_keys, dtype=np.int64),
        class_names=dict(enumerate(names)),
        root=base,
        label_keys=label_keys,
    )


def folder_layout(root: Path | None, test_root: Path | None = None) -> SplitLayout:
    """The layout ``list_folder`` reads from ``root`` (and ``test_root``)."""
    if test_root is not None:
        return TEST_TREE
    trees = _trees(_tree(root), None)
    if trees is None:
        return SEEDED
    held_out = tuple(s for s in SPLIT_FOLDERS if s in trees and s != "train")
    return SplitLayout("/".join(("train", *held_out)) + " folders", held_out)


def _tree(root: Path | str | None) -> Path:
    if root is None or not Path(root).expanduser().is_dir():
        raise missing("folder", root, HOW, LAYOUT)
    return Path(root).expanduser()


def _trees(root: Path, test_root: Path | str | None) -> dict[str, Path] | None:
    """The folder of each split (None: no split folders, use the seeded split)."""
    found = {s: root / s for s in SPLIT_FOLDERS if (root / s).is_dir()}
    if test_root is not None:
        if "train" in found:
            raise DatasetNotFoundError(
                f"folder: {root} holds split folders ({', '.join(found)}) and a test root was "
                f"given too; use one: the split folders, or a root of class folders and the "
                f"test root"
            )
        return {"train": root, "test": _tree(test_root)}
    if "train" not in found:
        return None
    if "test" in found and ("query" in found or "gallery" in found):
        raise DatasetNotFoundError(
            f"folder: {root} holds test/ and query/ or gallery/: keep test/ (every image "
            "searched among the others) or query/ and gallery/ (queries searched in the gallery)"
        )
    if "test" not in found and not {"query", "gallery"} <= found.keys():
        raise DatasetNotFoundError(
            f"folder: {root} holds train/ but no test/ (or query/ and gallery/): add the "
            f"held-out split. Expected layout:\n{LAYOUT}"
        )
    return found


def _class_files(tree: Path) -> dict[str, list[Path]]:
    """The image files of each class folder of ``tree`` (classes without images left out)."""
    files = {
        d.name: image_files(d)
        for d in sorted(tree.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    files = {name: found for name, found in files.items() if found}
    if not files:
        raise DatasetNotFoundError(
            f"folder: {tree} holds no class folders with images. Expected layout:\n{LAYOUT}"
        )
    return files


def _seeded(root: Path, split: str, seed: int) -> Listing:
    """A seeded random half of the class folders (``split="train"``) or the other half."""
    files = _class_files(root)
    classes = list(files)
    if len(classes) < 2:
        raise missing("folder", root, HOW, LAYOUT)
    train = split_classes(np.arange(len(classes)), TRAIN_FRACTION, seed)
    keys = train if split == "train" else np.setdiff1d(np.arange(len(classes)), train)
    items, sample_keys = [], []
    for key in keys:
        items += files[classes[key]]
        sample_keys += [key] * len(files[classes[key]])
    return Listing(
        items=items,
        sample_ids=[p.relative_to(root).as_posix() for p in items],
        keys=np.asarray(sample_keys, dtype=np.int64),
        class_names=dict(enumerate(classes)),
        root=root,
    )
