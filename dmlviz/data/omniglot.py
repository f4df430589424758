"""Omniglot: handwritten characters of 50 alphabets, 20 drawings each, in a folder tree
``<alphabet>/<character>/*.png``. A class is one character, named ``"<alphabet>/<character>"``.

``root`` may be the folder of alphabets, a folder up to two levels above it (torchvision's download
root, which holds ``omniglot-py/images_background``), or a ``.zip`` of such a tree, unpacked once
into ``$DMLVIZ_CACHE_DIR`` (default ``~/.cache/dmlviz``). ``download=True`` fetches the background
set with torchvision's downloader (into root, or the cache folder when root is None).

Protocols (class-disjoint, seeded by ``seed``): "characters" puts a random half of the characters
in train and the other half in test; "alphabets" does the same with whole alphabets. With a test
root (Omniglot's standard protocol: train on ``images_background``, test on
``images_evaluation``) every character of ``root`` trains and every character of the test root
tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from dmlviz.data.listing import (
    DatasetNotFoundError,
    Listing,
    SplitLayout,
    cache_dir,
    missing,
    split_classes,
)

TRAIN_FRACTION = 0.5
HOW = (
    "Download python/images_background.zip (and images_evaluation.zip, the standard test set) "
    "from https://github.com/brendenlake/omniglot; the .zip will do as it is "
    '(--dataset-root images_background.zip). From Python, load_dataset("omniglot", '
    "download=True) fetches the background set with torchvision."
)
LAYOUT = (
    "  <root>/<alphabet>/<character>/<image>.png, e.g. images_background/Greek/character01/"
    "0394_01.png;\n  root may also be up to two folders above that, or the .zip of such a tree."
)
_UNZIPPED = ".dmlviz-unzipped"  # marker written last: the folder is complete


def list_omniglot(
    root: Path | None,
    split: str,
    protocol: str,
    seed: int,
    download: bool,
    test_root: Path | None = None,
) -> Listing:
    """The images of the characters in ``split`` ("train" or "test") under ``protocol``; with
    ``test_root`` (e.g. ``images_evaluation``) every character of ``root`` trains and every one
    of ``test_root`` tests, whatever the protocol, matched by name."""
    folder = alphabet_folder(root, download)
    characters = _characters(folder)
    if test_root is not None:
        test_folder = alphabet_folder(test_root, prefer="evaluation")
        test_characters = _characters(test_folder)
        names = sorted({*characters, *test_characters})
        if split != "train":
            folder, characters = test_folder, test_characters
        keys = np.searchsorted(names, characters)
        characters = names
    elif protocol == "characters":
        keys = split_classes(np.arange(len(characters)), TRAIN_FRACTION, seed)
    else:
        alphabet_of = [c.split("/")[0] for c in characters]
        alphabets = sorted(set(alphabet_of))
        chosen = {
            alphabets[i] for i in split_classes(np.arange(len(alphabets)), TRAIN_FRACTION, seed)
        }
        keys = np.array([k for k, a in enumerate(alphabet_of) if a in chosen])
    if test_root is None and split != "train":
        keys = np.setdiff1d(np.arange(len(characters)), keys)
    items, sample_ids, sample_keys = [], [], []
    for key in keys:
        for path in sorted((folder / characters[key]).glob("*.png")):
            items.append(path)
            sample_ids.append(path.relative_to(folder).as_posix())
            sample_keys.append(key)
    return Listing(
        items=items,
        sample_ids=sample_ids,
        keys=np.asarray(sample_keys, dtype=np.int64),
        class_names=dict(enumerate(characters)),
        root=folder,
    )


def omniglot_layout(root: Path | None, test_root: Path | None = None) -> SplitLayout:
    """The layout's name: a separate test tree with ``test_root``, else the seeded class split."""
    return SplitLayout("separate test tree" if test_root is not None else "seeded class split")


def _characters(folder: Path) -> list[str]:
    """The ``"<alphabet>/<character>"`` folders of an alphabet folder, sorted."""
    return sorted(
        f"{a.name}/{c.name}"
        for a in folder.iterdir()
        if a.is_dir() and not a.name.startswith(".")
        for c in a.iterdir()
        if c.is_dir() and not c.name.startswith(".")
    )


def alphabet_folder(
    root: Path | str | None, download: bool = False, prefer: str = "background"
) -> Path:
    """The folder whose children are alphabets, found from ``root`` as the module docstring says
    (downloading or unzipping first when needed); of several, the one whose name holds
    ``prefer`` ("background" for training, "evaluation" for a test root)."""
    if root is None and not download:
        raise missing("omniglot", None, HOW, LAYOUT)
    root = Path(root).expanduser() if root is not None else cache_dir() / "omniglot"
    if download:
        from torchvision.datasets import Omniglot

        Omniglot(str(root), background=True, download=True)
    if root.suffix.lower() == ".zip" and root.is_file():
        root = _unzip(root)
    level = [root]
    for _ in range(3):
        found = [d for d in level if _holds_alphabets(d)]
        if len(found) > 1:
            background = [d for d in found if prefer in d.name]
            if len(background) != 1:
                raise DatasetNotFoundError(
                    f"omniglot: several folders of alphabets under {root}: "
                    f"{', '.join(str(d) for d in found)}; pass one of them as root"
                )
            found = background
        if found:
            return found[0]
        level = [c for d in level if d.is_dir() for c in sorted(d.iterdir()) if c.is_dir()]
    raise missing("omniglot", root, HOW, LAYOUT)


def _holds_alphabets(folder: Path, probe: int = 3) -> bool:
    """Whether ``folder/<alphabet>/<character>/`` holds PNG files, looking at a few of each."""
    if not folder.is_dir():
        return False
    alphabets = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    for alphabet in alphabets[:probe]:
        characters = sorted(d for d in alphabet.iterdir() if d.is_dir())
        if any(next(c.glob("*.png"), None) for c in characters[:probe]):
            return True
    return False


def _unzip(archive: Path) -> Path:
    """The folder ``archive`` unpacks to under the cache folder, unpacking it the first time (or
    again when the archive changed). Safe against two processes doing it at once."""
    stat = archive.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}"
    digest = hashlib.sha1(str(archive.resolve()).encode()).hexdigest()[:10]
    dest = cache_dir() / f"{archive.stem}-{digest}"
    if _stamp(dest) == stamp:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(staging)  # zipfile drops ".." and absolute parts of member names
        (staging / _UNZIPPED).write_text(stamp)
        if _stamp(dest) == stamp:  # another process finished first; it may be reading it now
            return dest
        if dest.exists():  # unpacked from an older version of the archive
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(staging, dest)
        except OSError:
            if _stamp(dest) != stamp:  # not another process that just finished the same job
                raise
    except zipfile.BadZipFile as error:
        raise DatasetNotFoundError(f"omniglot: {archive} is not a readable zip ({error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _stamp(folder: Path) -> str | None:
    try:
        return (folder / _UNZIPPED).read_text()
    except OSError:
        return None
