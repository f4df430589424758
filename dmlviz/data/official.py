"""Parsers of the four standard deep-metric-learning image sets, in their official archive layouts.

Each uses the usual class-disjoint protocol of the DML literature (protocol "classes"):

- cub200 (CUB-200-2011): classes 1-100 train, 101-200 test;
- cars196 (Stanford Cars): classes 1-98 train, 99-196 test (the archive's own train/test flag,
  which splits every class, is not used);
- sop (Stanford Online Products): ``Ebay_train.txt`` trains, ``Ebay_test.txt`` tests;
- inshop (DeepFashion In-shop): the "train" items train; the test items come as two splits,
  "query" and "gallery", which share one label space.

Every parser reads only annotation files; the images are checked by the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from dmlviz.data.listing import DatasetNotFoundError, Listing, find_root, malformed, missing

CUB_TRAIN_CLASSES = 100
CARS_TRAIN_CLASSES = 98

CUB_HOW = (
    "Download CUB_200_2011.tgz from https://www.vision.caltech.edu/datasets/cub_200_2011/ "
    "and unpack it."
)
CUB_LAYOUT = """\
  <root>/images.txt               "<image_id> <class folder>/<file>.jpg" per line
  <root>/image_class_labels.txt   "<image_id> <class_id 1..200>" per line
  <root>/classes.txt              "<class_id> <class name>" per line (optional)
  <root>/images/<class folder>/<file>.jpg
  (root may also be the folder that holds CUB_200_2011/)"""

CARS_HOW = (
    "Download cars_annos.mat and car_ims.tgz of Stanford Cars (see "
    "https://ai.stanford.edu/~jkrause/cars/car_dataset.html) and unpack car_ims.tgz beside "
    "cars_annos.mat."
)
CARS_LAYOUT = """\
  <root>/cars_annos.mat   MATLAB file: annotations (relative_im_path, class 1..196, ...) and
                          class_names
  <root>/car_ims/000001.jpg ... (the paths relative_im_path names)"""

SOP_HOW = (
    "Download Stanford_Online_Products.zip from https://cvgl.stanford.edu/projects/lifted_struct/ "
    "and unzip it."
)
SOP_LAYOUT = """\
  <root>/Ebay_train.txt, <root>/Ebay_test.txt   a header line "image_id class_id super_class_id
                                                path", then one image per line
  <root>/<super class>_final/<product>_<n>.JPG  (the paths those files name)
  (root may also be the folder that holds Stanford_Online_Products/)"""

INSHOP_HOW = (
    "Download the In-shop Clothes Retrieval Benchmark of DeepFashion (Img/img.zip and "
    "Eval/list_eval_partition.txt, see "
    "https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html) and unzip img.zip."
)
INSHOP_LAYOUT = """\
  <root>/list_eval_partition.txt (or <root>/Eval/list_eval_partition.txt): a count line, the
      header "image_name item_id evaluation_status", then "img/.../<file>.jpg id_<n> train|query|gallery"
  <root>/img/... (or <root>/Img/img/...): the images the list names"""


def _lines(path: Path, skip: int = 0) -> Iterator[tuple[int, str, list[str]]]:
    """(1-based line number, raw line, whitespace-separated fields) of the non-blank lines of
    ``path`` after the first ``skip`` lines."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if number > skip and line.strip():
                yield number, line, line.split()


def _locate(
    dataset: str,
    root: Path | str | None,
    markers: Sequence[str],
    subfolders: Sequence[str],
    how: str,
    layout: str,
) -> Path:
    if root is None:
        raise missing(dataset, None, how, layout)
    found = find_root(Path(root).expanduser(), markers, subfolders)
    if found is None:
        raise missing(dataset, root, how, layout)
    return found


def _listing(
    base: Path,
    image_dir: Path,
    rows: list[tuple[str, int]],
    class_names: dict[int, str],
    label_keys: np.ndarray | None = None,
) -> Listing:
    """A Listing of ``rows`` of (image path relative to ``image_dir``, class key)."""
    return Listing(
        items=[image_dir / path for path, _ in rows],
        sample_ids=[path for path, _ in rows],
        keys=np.asarray([key for _, key in rows], dtype=np.int64),
        class_names=class_names,
        root=base,
        label_keys=label_keys,
    )


def list_cub200(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """CUB-200-2011 from ``images.txt`` and ``image_class_labels.txt``; class key = class id - 1.
    ``seed`` and ``download`` play no part (the split is fixed; no automatic download)."""
    base = _locate(
        "cub200",
        root,
        ["images.txt", "image_class_labels.txt"],
        ["CUB_200_2011"],
        CUB_HOW,
        CUB_LAYOUT,
    )
    paths: dict[str, str] = {}
    for number, line, fields in _lines(base / "images.txt"):
        if len(fields) != 2:
            raise malformed(base / "images.txt", number, line, '"<image_id> <path>"')
        paths[fields[0]] = fields[1]
    class_of: dict[str, int] = {}
    for number, line, fields in _lines(base / "image_class_labels.txt"):
        if len(fields) != 2 or not fields[1].isdigit():
            raise malformed(
                base / "image_class_labels.txt", number, line, '"<image_id> <class_id>"'
            )
        class_of[fields[0]] = int(fields[1])
    names: dict[int, str] = {}
    if (base / "classes.txt").exists():
        for number, line, fields in _lines(base / "classes.txt"):
            if len(fields) != 2 or not fields[0].isdigit():
                raise malformed(base / "classes.txt", number, line, '"<class_id> <class name>"')
            names[int(fields[0]) - 1] = fields[1]
    rows = []
    for image_id, path in paths.items():
        if image_id not in class_of:
            raise DatasetNotFoundError(
                f"cub200: image {image_id} ({path}) of {base / 'images.txt'} has no class in "
                "image_class_labels.txt"
            )
        class_id = class_of[image_id]
        names.setdefault(class_id - 1, path.split("/")[0])
        if (class_id <= CUB_TRAIN_CLASSES) == (split == "train"):
            rows.append((path, class_id - 1))
    return _listing(base, base / "images", rows, names)


def list_cars196(
    root: Path | None, split: str, protocol: str, seed: int, download: bool
) -> Listing:
    """Stanford Cars from ``cars_annos.mat`` (read with scipy.io.loadmat); class key = class - 1.
    ``seed`` and ``download`` play no part."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    base = _locate("cars196", root, ["cars_annos.mat"], ["stanford_cars"], CARS_HOW, CARS_LAYOUT)
    try:
        mat = loadmat(base / "cars_annos.mat", squeeze_me=True)
        annotations = np.atleast_1d(mat["annotations"])
        paths = [str(p) for p in annotations["relative_im_path"]]
        classes = [int(c) for c in annotations["class"]]
        class_names = [str(n) for n in np.atleast_1d(mat["class_names"])]
    except (MatReadError, KeyError, ValueError, TypeError, OSError) as error:
        raise DatasetNotFoundError(
            f"cars196: cannot read {base / 'cars_annos.mat'} ({type(error).__name__}: {error}). "
            f"Expected layout:\n{CARS_LAYOUT}"
        ) from None
    names = {k: name for k, name in enumerate(class_names)}
    rows = []
    for path, class_id in zip(paths, classes, strict=True):
        names.setdefault(class_id - 1, f"class {class_id}")
        if (class_id <= CARS_TRAIN_CLASSES) == (split == "train"):
            rows.append((path, class_id - 1))
    return _listing(base, base, rows, names)


def list_sop(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """Stanford Online Products from ``Ebay_<split>.txt``; class key = class_id, class name
    ``"<super class folder>/<product>"``. ``seed`` and ``download`` play no part."""
    markers = ["Ebay_train.txt", "Ebay_test.txt"]
    base = _locate("sop", root, markers, ["Stanford_Online_Products"], SOP_HOW, SOP_LAYOUT)
    table = base / f"Ebay_{split}.txt"
    rows, names = [], {}
    for number, line, fields in _lines(table, skip=1):
        if len(fields) != 4 or not fields[1].isdigit():
            raise malformed(table, number, line, '"<image_id> <class_id> <super_class_id> <path>"')
        path, key = fields[3], int(fields[1])
        folder, _, file = path.rpartition("/")
        names.setdefault(key, f"{folder}/{file.rsplit('.', 1)[0].rsplit('_', 1)[0]}")
        rows.append((path, key))
    return _listing(base, base, rows, names)


def list_inshop(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """DeepFashion In-shop from ``list_eval_partition.txt``; class key = the item's rank among all
    item ids; "query" and "gallery" count labels over the test items of both. ``seed`` and
    ``download`` play no part."""
    listed = "list_eval_partition.txt"
    if root is None:
        raise missing("inshop", None, INSHOP_HOW, INSHOP_LAYOUT)
    root = Path(root).expanduser()
    found = find_root(root, [listed]) or find_root(root, [f"Eval/{listed}"])
    if found is None:
        raise missing("inshop", root, INSHOP_HOW, INSHOP_LAYOUT)
    table = found / listed if (found / listed).exists() else found / "Eval" / listed
    entries = []
    for number, line, fields in _lines(table, skip=2):
        if len(fields) != 3 or fields[2] not in ("train", "query", "gallery"):
            raise malformed(table, number, line, '"<image_name> <item_id> train|query|gallery"')
        entries.append(fields)
    if not entries:
        raise DatasetNotFoundError(f"inshop: {table} lists no images")
    items = sorted({item for _, item, _ in entries})
    key_of = {item: k for k, item in enumerate(items)}
    image_dir = _inshop_images(found, table, [path for path, _, _ in entries[:20]])
    rows = [(path, key_of[item]) for path, item, status in entries if status == split]
    label_keys = None
    if split != "train":
        label_keys = np.asarray(
            sorted({key_of[item] for _, item, status in entries if status != "train"}),
            dtype=np.int64,
        )
    return _listing(image_dir, image_dir, rows, dict(enumerate(items)), label_keys)


def _inshop_images(found: Path, table: Path, names: list[str]) -> Path:
    """The folder the image ``names`` of ``table`` are relative to (``img/...`` lives in the
    dataset folder or in its ``Img`` subfolder)."""
    first = names[0]
    for folder in (found, found / "Img", table.parent, table.parent.parent / "Img"):
        if any((folder / name).exists() for name in names):
            return folder
    raise DatasetNotFoundError(
        f"inshop: {table} names images such as {first}, but neither {found / first} nor "
        f"{found / 'Img' / first} exists; unzip Img/img.zip. Expected layout:\n{INSHOP_LAYOUT}"
    )
