"""Any folder of images sorted into one subfolder per class: ``<root>/<class>/<image>``.

Images may sit at any depth below their class folder; hidden files and folders are ignored. The
classes are split class-disjointly, a seeded random half for train and the rest for test
(protocol "classes"). Images are read as RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmlviz.data.listing import IMAGE_EXTENSIONS, Listing, image_files, missing, split_classes

PROTOCOLS = ("classes",)
TRAIN_FRACTION = 0.5
HOW = "Put the images of each class in a subfolder named after the class."
LAYOUT = (
    "  <root>/<class name>/<image>   (at least 2 classes; extensions "
    + " ".join(IMAGE_EXTENSIONS)
    + ")"
)


def list_folder(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """The images of a seeded random half of the class folders (``split="train"``) or of the
    other half (``"test"``); class key = rank of the folder name. ``download`` plays no part."""
    if root is None or not Path(root).expanduser().is_dir():
        raise missing("folder", root, HOW, LAYOUT)
    root = Path(root).expanduser()
    files = {
        d.name: image_files(d)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    classes = [name for name, found in files.items() if found]
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
