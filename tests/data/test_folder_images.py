"""The generic folder set, unreadable images, single-image classes and the transforms."""

import warnings

import numpy as np
import pytest
import torch
from dataset_trees import make_folder, write_image
from PIL import Image

from dmlviz.data import (
    BadImagesError,
    DatasetNotFoundError,
    eval_transform,
    load_dataset,
    train_transform,
)
from dmlviz.data.transforms import IMAGENET_MEAN, IMAGENET_STD, random_shift


def test_folder_splits_classes_in_half_by_seed(tmp_path):
    root = make_folder(tmp_path)
    train = load_dataset("folder", root=root, image_size=16)
    test = load_dataset("folder", root=root, split="test", image_size=16)
    assert train.num_classes == test.num_classes == 3
    assert not set(train.class_names) & set(test.class_names)
    assert len(train) == len(test) == 12  # 4 images a class, the nested one included
    assert all(s.startswith("class_") and s.endswith(".png") for s in train.sample_ids)
    assert any("/nested/" in s for s in train.sample_ids)
    assert train.labels.tolist() == sorted(train.labels.tolist())
    assert [train.class_names[y] for y in train.labels] == [
        s.split("/")[0] for s in train.sample_ids
    ]
    assert train[0][0].shape == (3, 16, 16) and train.in_channels == 3
    other = {tuple(load_dataset("folder", root=root, seed=s).class_names) for s in range(5)}
    assert len(other) > 1


def test_folder_needs_two_class_folders(tmp_path):
    write_image(tmp_path / "only" / "a.png", seed=0)
    with pytest.raises(DatasetNotFoundError, match="<root>/<class name>/<image>"):
        load_dataset("folder", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no root was given"):
        load_dataset("folder")


def _classes(root, counts):
    for c, count in enumerate(counts):
        for k in range(count):
            write_image(root / f"c{c}" / f"{k:03d}.png", seed=k, size=(4, 4))


def test_a_few_unreadable_images_are_skipped_with_one_warning(tmp_path):
    _classes(tmp_path, [101, 101, 101, 101])
    first = load_dataset("folder", root=tmp_path).class_names[0]  # 202 train images
    (tmp_path / first / "000.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / first / "001.png").write_bytes(b"")
    with pytest.warns(RuntimeWarning) as caught:
        ds = load_dataset("folder", root=tmp_path)
    assert len(caught) == 1
    assert str(caught[0].message).startswith(
        f"skipping 2 unreadable folder images under {tmp_path}: {first}/000.png, {first}/001.png"
    )
    assert len(ds) == 200 and f"{first}/000.png" not in ds.sample_ids
    assert np.bincount(ds.labels).tolist() == [99, 101]


def test_more_than_one_percent_unreadable_raises_with_the_list(tmp_path):
    _classes(tmp_path, [20, 20, 20, 20])
    train_classes = load_dataset("folder", root=tmp_path).class_names
    (tmp_path / train_classes[0] / "005.png").write_text("not a png")
    with pytest.raises(
        BadImagesError, match=rf"1 of 40 .*more than 1%.*{train_classes[0]}/005.png"
    ):
        load_dataset("folder", root=tmp_path)


def test_a_class_with_a_single_training_image_is_reported(tmp_path):
    _classes(tmp_path, [3, 1, 3, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(6):
            load_dataset("folder", root=tmp_path, seed=seed)
            load_dataset("folder", root=tmp_path, seed=seed, split="test")
    messages = [str(w.message) for w in caught]
    assert messages and all("of the train split have a single image" in m for m in messages)


def test_eval_transform_resizes_crops_and_normalises():
    image = Image.new("RGB", (60, 40), (255, 0, 0))
    out = eval_transform(32, 3)(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    expected = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
        IMAGENET_STD
    )
    assert torch.allclose(out[:, 16, 16], expected, atol=1e-5)
    gray = eval_transform(28, 1)(Image.new("L", (50, 70), 255))
    assert gray.shape == (1, 28, 28) and torch.allclose(gray, torch.ones_like(gray))


def test_train_transform_is_random_with_the_same_shape():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    torch.manual_seed(0)
    a, b = train_transform(24)(image), train_transform(24)(image)
    assert a.shape == b.shape == (3, 24, 24)
    assert not torch.equal(a, b)
    assert train_transform(20, 1)(image.convert("L")).shape == (1, 20, 20)
    with pytest.raises(ValueError, match="in_channels=2 is invalid"):
        train_transform(20, 2)


def test_random_shift_moves_content_and_fills_with_zeros():
    image = torch.zeros(1, 8, 8)
    image[0, 3, 4] = 1.0
    torch.manual_seed(1)
    positions = set()
    for _ in range(40):
        out = random_shift(image, 1)
        assert out.shape == image.shape and out.sum() == 1
        positions.add(tuple(out[0].nonzero()[0].tolist()))
    assert positions <= {(3 + dy, 4 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert len(positions) > 3
