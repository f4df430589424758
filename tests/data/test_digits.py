"""scikit-learn's 8x8 digits: protocols, contiguous labels, val classes, thumbnails, argument errors."""

import numpy as np
import pytest
import torch

from dmlviz.data import DATASETS, PROTOCOLS, ArrayDataset, load_dataset


def test_classes_protocol_trains_on_0_to_4_and_tests_on_5_to_9():
    train = load_dataset("digits")
    test = load_dataset("digits", split="test")
    assert isinstance(train, ArrayDataset)  # one precomputed tensor, no PIL per item
    assert train.class_names == ["0", "1", "2", "3", "4"]
    assert test.class_names == ["5", "6", "7", "8", "9"]
    assert len(train) + len(test) == 1797
    assert set(train.labels.tolist()) == set(test.labels.tolist()) == set(range(5))
    assert train.sample_ids[:2] == ["digits/0", "digits/1"]
    assert not set(train.sample_ids) & set(test.sample_ids)
    assert (train.in_channels, train.image_size, train.num_classes) == (1, 8, 5)


def test_samples_protocol_splits_every_class_in_half_by_seed():
    train = load_dataset("digits", protocol="samples", seed=1)
    test = load_dataset("digits", protocol="samples", split="test", seed=1)
    assert train.class_names == test.class_names == [str(d) for d in range(10)]
    counts = np.bincount(train.labels) - np.bincount(test.labels)
    assert set(counts.tolist()) <= {0, 1}  # each digit: half, odd ones one more in train
    assert not set(train.sample_ids) & set(test.sample_ids)
    other = load_dataset("digits", protocol="samples", seed=2)
    assert other.sample_ids != train.sample_ids
    assert load_dataset("digits", protocol="samples", seed=1).sample_ids == train.sample_ids


def test_items_are_float_images_in_unit_range_with_label_and_index():
    ds = load_dataset("digits")
    image, label, index = ds[10]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1 and image.max() > 0.5
    assert (label, index) == (int(ds.labels[10]), 10)
    assert load_dataset("digits", image_size=16)[10][0].shape == (1, 16, 16)


def test_augmentation_shifts_a_pixel_or_so_and_keeps_the_shape():
    plain = load_dataset("digits")
    augmented = load_dataset("digits", augment=True)
    torch.manual_seed(0)
    shifted = torch.stack([augmented[i][0] for i in range(50)])
    originals = torch.stack([plain[i][0] for i in range(50)])
    assert shifted.shape == originals.shape
    assert not torch.equal(shifted, originals)
    assert (shifted.sum((1, 2, 3)) <= originals.sum((1, 2, 3)) + 1e-6).all()  # ink only lost


def test_thumbnail_is_a_visible_grayscale_image():
    image = load_dataset("digits").image(0)
    assert image.mode == "L" and image.size == (64, 64)
    pixels = np.asarray(image)
    assert pixels.max() == 255 and pixels.min() < 128  # white paper, dark ink


def test_val_split_takes_train_classes_and_train_excludes_them():
    train = load_dataset("digits", val_fraction=0.4, seed=5)
    val = load_dataset("digits", split="val", val_fraction=0.4, seed=5)
    assert len(val.class_names) == 2 and len(train.class_names) == 3
    assert sorted(train.class_names + val.class_names) == ["0", "1", "2", "3", "4"]
    assert val.labels.max() == 1 and train.labels.max() == 2
    test = load_dataset("digits", split="test", val_fraction=0.4, seed=5)
    assert test.class_names == ["5", "6", "7", "8", "9"]


def test_class_disjoint_validation_folds_cover_the_train_classes_once():
    from dmlviz.data.load import validation_folds

    kwargs = dict(protocol="classes", val_fraction=0.2, seed=3)  # 5 train digits: 1 a fold
    assert validation_folds("digits", 0.2, protocol="classes", seed=3) == 5
    folds = [load_dataset("digits", split="val", val_fold=f, **kwargs) for f in range(5)]
    assert sorted(n for fold in folds for n in fold.class_names) == ["0", "1", "2", "3", "4"]
    assert load_dataset("digits", split="val", **kwargs).class_names == folds[0].class_names
    train = load_dataset("digits", split="train", val_fold=3, **kwargs)
    assert set(train.class_names) == {"0", "1", "2", "3", "4"} - set(folds[3].class_names)
    with pytest.raises(ValueError, match="val_fold=5 is invalid: 5 training classes hold 5"):
        load_dataset("digits", split="val", val_fold=5, **kwargs)


def test_under_the_samples_protocol_folds_hold_out_images_of_every_digit():
    """The test split holds other images of the train digits, so validation does too."""
    from dmlviz.data.load import validation_folds

    kwargs = dict(protocol="samples", val_fraction=0.2, seed=3)
    assert validation_folds("digits", 0.2, protocol="samples", seed=3) == 5
    train_all = load_dataset("digits", split="train", protocol="samples", seed=3)
    folds = [load_dataset("digits", split="val", val_fold=f, **kwargs) for f in range(5)]
    ids = [set(fold.sample_ids) for fold in folds]
    assert all(a.isdisjoint(b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    assert all(fold.class_names == train_all.class_names for fold in folds)  # all ten digits
    per_digit = np.bincount(folds[0].labels, minlength=10)
    assert per_digit.min() >= 17 and per_digit.max() <= 19  # a fifth of ~90 train images each
    train = load_dataset("digits", split="train", val_fold=2, **kwargs)
    assert set(train.sample_ids) == set(train_all.sample_ids) - ids[2]
    assert train.class_names == train_all.class_names
    test = load_dataset("digits", split="test", protocol="samples", seed=3)
    assert set().union(*ids).isdisjoint(test.sample_ids)  # never a test image
    assert load_dataset("digits", split="val", **kwargs).sample_ids == folds[0].sample_ids
    with pytest.raises(ValueError, match="every training class's images hold 5 disjoint folds"):
        load_dataset("digits", split="val", val_fold=5, **kwargs)


def test_class_names_name_the_digit_drawn():
    from sklearn.datasets import load_digits

    target = load_digits().target
    val = load_dataset("digits", split="val", val_fraction=0.4, seed=5)
    rows = [int(s.split("/")[1]) for s in val.sample_ids]
    assert [val.class_names[y] for y in val.labels] == [str(target[r]) for r in rows]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mnist"}, "dataset='mnist' is invalid: use one of digits, omniglot"),
        (
            {"protocol": "alphabets"},
            "protocol='alphabets' is invalid for digits: use one of classes, samples",
        ),
        ({"split": "val"}, "split='val' needs val_fraction"),
        ({"split": "valid"}, "split='valid' is invalid for digits"),
        ({"val_fraction": 1.5}, r"val_fraction=1.5 is invalid: use a number in \(0, 1\)"),
        ({"image_size": 0}, "image_size=0 is invalid"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_allowed_values(kwargs, message):
    kwargs = {"name": "digits", **kwargs}
    with pytest.raises(ValueError, match=message):
        load_dataset(**kwargs)


def test_registry_lists_every_dataset_and_its_protocols():
    assert DATASETS == ("digits", "omniglot", "cub200", "cars196", "sop", "inshop", "folder", "csv")
    assert PROTOCOLS["digits"] == ("classes", "samples")
    assert PROTOCOLS["omniglot"] == ("characters", "alphabets")
