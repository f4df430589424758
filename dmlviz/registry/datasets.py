"""The one list of datasets: each entry's facts declared once, the way ``dmlviz.registry``
declares losses and backbones.

An entry names its loader (``"module:attribute"``, imported when a split is loaded, so this module
stays free of torch and the CLI and dashboard read it fast) and everything the rest of dmlviz says
about the dataset: its protocols, input channels and side, how its splits are drawn, whether it is
read from a folder and takes a second test tree, and the training settings it changes
(``dmlviz.train.config.default_config`` lays them over the base settings).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every split a run may hold embeddings (and their evaluation and maps) of: train, val (held out
# of train or the data's own) and the held-out splits of any layout (``DatasetEntry.held_out``).
SPLITS = ("train", "test", "val", "query", "gallery")


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset's facts.

    ``loader`` lists a split: ``(root, split, protocol, seed, download[, test_root])`` ->
    ``dmlviz.data.listing.Listing``. ``protocols``: how classes may be split, the first the
    loader's default. ``layout``: ``"module:attribute"`` of ``(root, test_root) -> SplitLayout``
    when the layout depends on the files; else every copy is laid out as ``layout_name`` with the
    held-out splits ``held_out``. ``shared_class_protocols``: those whose test split holds the
    train classes. ``invert``: grayscale files drawn dark on light (inverted so ink is bright).
    """

    name: str
    loader: str
    protocols: tuple[str, ...]
    in_channels: int
    image_size: int  # default side of the model's input, in pixels
    defaults: dict[str, Any] = field(default_factory=dict)  # training settings it changes
    needs_root: bool = True  # read from a folder (else bundled with a package)
    test_root: bool = False  # the loader takes a test_root (a second tree that tests)
    layout: str | None = None
    layout_name: str = "official split"
    held_out: tuple[str, ...] = ("test",)
    shared_class_protocols: tuple[str, ...] = ()
    invert: bool = False

    def load(self) -> Callable[..., Any]:
        """The loader, imported now."""
        return _load(self.loader)

    def layout_function(self) -> Callable[..., Any] | None:
        """The function that tells this dataset's layout from its files, imported now (None:
        the layout is fixed)."""
        return _load(self.layout) if self.layout else None


DATASET_ENTRIES: dict[str, DatasetEntry] = {}


def register_dataset(**facts: Any) -> DatasetEntry:
    """Add the dataset ``facts["name"]`` (``DatasetEntry``'s fields); returns its entry."""
    entry = DatasetEntry(**facts)
    if entry.name in DATASET_ENTRIES:
        raise ValueError(f"dataset {entry.name!r} is registered twice")
    DATASET_ENTRIES[entry.name] = entry
    return entry


def _load(path: str) -> Callable[..., Any]:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


# The photo datasets train a pretrained ResNet at 224 px; decoding JPEGs needs workers (never more
# than the machine's cores).
_IMAGE_SETS = {
    "model": "resnet50",
    "pretrained": True,
    "freeze_bn": True,
    "embedding_dim": 512,
    "image_size": 224,
    "augment": True,
    "num_workers": min(4, os.cpu_count() or 1),
    "epochs": 50,
    "batch_size": 128,
    "m_per_class": 4,
    "lr": 1e-4,
    "backbone_lr": 1e-5,
    "eval_every": 5,
    "replay_every": 10,
}
_OFFICIAL = ("classes",)  # the archives' own fixed class split

register_dataset(
    name="digits",
    loader="dmlviz.data.digits:list_digits",
    protocols=("classes", "samples"),
    in_channels=1,
    image_size=8,
    # Small enough to train in seconds on 2 cores. Protocol "samples" (every digit in both
    # splits): with "classes" (train 0-4, test 5-9) five training classes teach features that
    # transfer worse to the unseen digits than the untrained network's (test MAP@R falls from
    # 0.47 to about 0.3 for every loss), so nothing could be learnt from comparing losses there.
    defaults={
        "protocol": "samples",
        "model": "mlp",
        "embedding_dim": 64,
        "epochs": 25,
        "batch_size": 60,
        "m_per_class": 12,
        "lr": 2e-3,
        "eval_every": 5,
        "replay_every": 2,  # 14 snapshots of 1,800 images: 3.3 MB, about 6 % of training time
        "num_threads": 1,  # a model this small gains nothing from more, and loses when cores are shared
    },
    needs_root=False,
    layout_name="protocol split",
    shared_class_protocols=("samples",),
)
register_dataset(
    name="omniglot",
    loader="dmlviz.data.omniglot:list_omniglot",
    protocols=("characters", "alphabets"),
    in_channels=1,
    image_size=28,
    defaults={
        "model": "convnet",
        "embedding_dim": 64,
        "image_size": 28,
        "epochs": 20,
        "batch_size": 64,
        "m_per_class": 4,
        "eval_every": 5,
    },
    test_root=True,
    layout="dmlviz.data.omniglot:omniglot_layout",
    invert=True,
)
for _name in ("cub200", "cars196", "sop"):
    register_dataset(
        name=_name,
        loader=f"dmlviz.data.official:list_{_name}",
        protocols=_OFFICIAL,
        in_channels=3,
        image_size=224,
        defaults=_IMAGE_SETS,
    )
register_dataset(
    name="inshop",
    loader="dmlviz.data.official:list_inshop",
    protocols=_OFFICIAL,
    in_channels=3,
    image_size=224,
    defaults=_IMAGE_SETS,
    held_out=("query", "gallery"),
)
register_dataset(
    name="folder",
    loader="dmlviz.data.folder:list_folder",
    protocols=("classes",),
    in_channels=3,
    image_size=224,
    defaults={**_IMAGE_SETS, "model": "resnet18"},
    test_root=True,
    layout="dmlviz.data.folder:folder_layout",
)
register_dataset(
    name="csv",
    loader="dmlviz.data.table:list_table",
    protocols=("given",),
    in_channels=3,
    image_size=224,
    defaults={**_IMAGE_SETS, "model": "resnet18"},
    layout="dmlviz.data.table:table_layout",
)

DATASETS: tuple[str, ...] = tuple(DATASET_ENTRIES)
PROTOCOLS: dict[str, tuple[str, ...]] = {n: e.protocols for n, e in DATASET_ENTRIES.items()}
TEST_ROOT_DATASETS: tuple[str, ...] = tuple(n for n, e in DATASET_ENTRIES.items() if e.test_root)
NEEDS_NO_ROOT: tuple[str, ...] = tuple(n for n, e in DATASET_ENTRIES.items() if not e.needs_root)
