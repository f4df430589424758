"""MPerClassBatchSampler: class counts per batch, determinism by (seed, epoch), small classes."""

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dmlviz.data import MPerClassBatchSampler, load_dataset


def _labels(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


def test_every_batch_has_distinct_classes_with_m_images_each():
    labels = _labels([10, 7, 12, 9, 8, 11, 6, 5, 13, 4])  # 85 images
    sampler = MPerClassBatchSampler(labels, m=4, batch_size=16, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 85 // 16
    for batch in batches:
        assert len(batch) == 16
        counts = Counter(labels[batch].tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}
        assert len(set(batch)) == 16  # classes with >= m images: no repeats within a batch


def test_classes_are_visited_evenly_and_images_all_get_used():
    labels = _labels([8] * 7)
    sampler = MPerClassBatchSampler(labels, m=2, batch_size=6, seed=3, batches_per_epoch=70)
    batches = list(sampler)
    per_class = Counter(labels[np.concatenate(batches)].tolist())
    assert max(per_class.values()) - min(per_class.values()) <= 2 * 2  # within one pass's slack
    assert set(np.concatenate(batches).tolist()) == set(range(len(labels)))
    for batch in batches:  # across pass boundaries too
        assert len(Counter(labels[batch].tolist())) == 3


def test_batches_depend_only_on_seed_and_epoch():
    labels = _labels([6, 5, 9, 7, 4, 8])
    a = MPerClassBatchSampler(labels, m=3, batch_size=9, seed=7)
    b = MPerClassBatchSampler(labels, m=3, batch_size=9, seed=7)
    np.random.seed(123)  # the global RNGs play no part
    torch.manual_seed(123)
    epoch0 = list(a)
    assert list(a) == epoch0
    a.set_epoch(1)
    b.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != epoch0
    assert list(b) == epoch1  # a fresh sampler, as after a restart
    b.set_epoch(0)
    assert list(b) == epoch0
    c = MPerClassBatchSampler(labels, m=3, batch_size=9, seed=8)
    assert list(c) != epoch0


def test_classes_smaller_than_m_are_sampled_with_replacement_with_a_warning():
    labels = _labels([1, 2, 10, 10])
    with pytest.warns(RuntimeWarning, match=r"m=4 .* more than 2 of the 4 classes hold .*has 1"):
        sampler = MPerClassBatchSampler(labels, m=4, batch_size=16, seed=0, batches_per_epoch=5)
    for batch in sampler:
        counts = Counter(labels[batch].tolist())
        assert counts == {0: 4, 1: 4, 2: 4, 3: 4}
        assert set(np.asarray(batch)[labels[batch] == 0].tolist()) == {0}


def test_default_length_and_validation():
    labels = _labels([3, 3, 3])
    assert len(MPerClassBatchSampler(labels, m=2, batch_size=4)) == 2
    assert len(MPerClassBatchSampler(labels, m=3, batch_size=9)) == 1
    assert len(MPerClassBatchSampler(labels[:2].tolist() + [1], m=1, batch_size=2)) == 1
    with pytest.raises(ValueError, match="batch_size=10 is invalid: use a multiple of m=4"):
        MPerClassBatchSampler(labels, m=4, batch_size=10)
    with pytest.raises(ValueError, match="a batch needs 4 classes but the labels have 3"):
        MPerClassBatchSampler(labels, m=2, batch_size=8)
    with pytest.raises(ValueError, match="m=0 is invalid"):
        MPerClassBatchSampler(labels, m=0)
    with pytest.raises(ValueError, match="batches_per_epoch=0 is invalid"):
        MPerClassBatchSampler(labels, m=1, batch_size=3, batches_per_epoch=0)
    with pytest.raises(ValueError, match="epoch=-1 is invalid"):
        MPerClassBatchSampler(labels, m=1, batch_size=3).set_epoch(-1)
    with pytest.raises(ValueError, match="non-empty 1-d integer array"):
        MPerClassBatchSampler(np.array([0.5, 1.5]), m=1, batch_size=2)


def test_drives_a_dataloader_over_digits():
    train = load_dataset("digits")
    sampler = MPerClassBatchSampler(train.labels, m=12, batch_size=60, seed=0)
    images, labels, indices = next(iter(DataLoader(train, batch_sampler=sampler)))
    assert images.shape == (60, 1, 8, 8)
    assert torch.equal(labels, torch.as_tensor(train.labels[indices.numpy()]))
    assert torch.bincount(labels).tolist() == [12] * 5
