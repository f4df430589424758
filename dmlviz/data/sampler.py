"""m-per-class batches: every batch holds ``batch_size // m`` distinct classes, ``m`` images each.

Written here rather than taken from pytorch-metric-learning's ``MPerClassSampler`` because that
one draws from the global NumPy RNG and has no notion of an epoch, so the batches of epoch ``e``
cannot be reproduced after a restart. Here the batches depend only on ``(seed, epoch)``: a resumed
run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class MPerClassBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices: ``batch_size // m`` distinct classes, ``m`` of each.

    Classes are visited in a shuffled order, reshuffled after every full pass, so all classes
    appear about equally often. Within a class, images are drawn without replacement from a
    shuffled queue, refilled when fewer than ``m`` are left (so no image repeats within a
    batch); a class with fewer than ``m`` images is sampled with replacement, with a warning.

    Args:
        labels: ``(n,)`` integer labels of the dataset (the observed, possibly noisy, ones).
        m: images per class in a batch.
        batch_size: images per batch, a multiple of ``m``; ``batch_size // m`` must not exceed
            the number of classes.
        seed: with the epoch (``set_epoch``), the only source of randomness.
        batches_per_epoch: batches per iteration (None: ``len(labels) // batch_size``, at least 1).

    Use as ``DataLoader(dataset, batch_sampler=sampler)`` and call ``sampler.set_epoch(epoch)``
    before each epoch.
    """

    def __init__(
        self,
        labels: np.ndarray,
        m: int = 4,
        batch_size: int = 32,
        seed: int = 0,
        batches_per_epoch: int | None = None,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a non-empty 1-d integer array, got shape {labels.shape} "
                f"dtype {labels.dtype}"
            )
        if not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m={m!r} is invalid: use a positive int")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < m or batch_size % m:
            raise ValueError(f"batch_size={batch_size!r} is invalid: use a multiple of m={m}")
        self.classes, inverse = np.unique(labels, return_inverse=True)
        per_batch = batch_size // m
        if per_batch > len(self.classes):
            raise ValueError(
                f"batch_size={batch_size} is invalid with m={m}: a batch needs {per_batch} "
                f"classes but the labels have {len(self.classes)}"
            )
        if batches_per_epoch is None:
            batches_per_epoch = max(1, len(labels) // batch_size)
        elif not isinstance(batches_per_epoch, (int, np.integer)) or batches_per_epoch < 1:
            raise ValueError(
                f"batches_per_epoch={batches_per_epoch!r} is invalid: use a positive int or None"
            )
        sizes = np.bincount(inverse)
        if sizes.min() < m:
            warnings.warn(
                f"m={m} images per class (m_per_class) is more than {int((sizes < m).sum())} of "
                f"the {len(sizes)} classes hold (the smallest has {sizes.min()}): their images "
                "repeat within a batch",
                RuntimeWarning,
                stacklevel=2,
            )
        self.labels = labels
        self.m = int(m)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.batches_per_epoch = int(batches_per_epoch)
        self.epoch = 0
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))[:-1]
        self._members = np.split(order, bounds)  # indices of each class, in dataset order

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches ``__iter__`` yields (batches depend on seed and epoch
        only)."""
        if not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch={epoch!r} is invalid: use an int >= 0")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        per_batch = self.batch_size // self.m
        n_classes = len(self._members)
        class_queue = rng.permutation(n_classes)
        queues = [rng.permutation(members) for members in self._members]
        for _ in range(self.batches_per_epoch):
            if len(class_queue) < per_batch:
                # Start a new pass behind the old pass's leftovers, which it takes last, so the
                # next batch (leftovers + the new pass's first classes) has no class twice.
                fresh = rng.permutation(n_classes)
                fresh = np.concatenate([fresh[~np.isin(fresh, class_queue)], class_queue])
                class_queue = np.concatenate([class_queue, fresh])
            chosen, class_queue = class_queue[:per_batch], class_queue[per_batch:]
            batch = []
            for c in chosen:
                members = self._members[c]
                if len(members) < self.m:
                    batch += rng.choice(members, self.m, replace=True).tolist()
                    continue
                if len(queues[c]) < self.m:
                    queues[c] = rng.permutation(members)
                batch += queues[c][: self.m].tolist()
                queues[c] = queues[c][self.m :]
            yield batch
