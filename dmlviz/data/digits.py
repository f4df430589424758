"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images, 10 classes, no download.

Protocols: "classes" (class-disjoint: train on digits 0-4, test on 5-9) and "samples" (every
digit in both splits: a seeded, stratified half of each digit's images trains, the rest tests).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from dmlviz.data.listing import Listing

TRAIN_DIGITS = 5  # protocol "classes": digits below this train, the others test


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(images as uint8 (1797, 8, 8) with ink 255 on background 0, digit per image)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.rint(data.images * (255 / 16)).astype(np.uint8)
    images.setflags(write=False)
    return images, data.target.astype(np.int64)


def list_digits(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """The digits of ``split`` ("train" or "test") under ``protocol``; ``root`` and ``download``
    are ignored (the data ships with scikit-learn)."""
    images, target = _digits()
    if protocol == "classes":
        in_train = target < TRAIN_DIGITS
    else:
        rng = np.random.default_rng(seed)
        in_train = np.zeros(len(target), dtype=bool)
        for digit in range(10):
            rows = rng.permutation(np.flatnonzero(target == digit))
            in_train[rows[: (len(rows) + 1) // 2]] = True
    rows = np.flatnonzero(in_train if split == "train" else ~in_train)
    return Listing(
        items=rows.tolist(),
        sample_ids=[f"digits/{r}" for r in rows],
        keys=target[rows],
        class_names={d: str(d) for d in range(10)},
        array=images,
    )
