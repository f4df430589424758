"""Omniglot: finding the alphabets from several roots, zips, the two protocols, the real subset."""

import numpy as np
import pytest
import torch
from dataset_trees import make_omniglot, make_omniglot_zip
from shared_files import shared_path

from dmlviz.data import DatasetNotFoundError, load_dataset


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Unzipped archives go to a per-test cache folder, never to the home folder."""
    monkeypatch.setenv("DMLVIZ_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def omniglot_tree(tmp_path):
    return make_omniglot(tmp_path)


@pytest.fixture
def omniglot_zip(omniglot_tree, tmp_path):
    return make_omniglot_zip(omniglot_tree, tmp_path)


@pytest.mark.parametrize("up", [0, 1, 2])
def test_root_may_be_the_alphabets_or_up_to_two_folders_above(omniglot_tree, up):
    root = omniglot_tree.parents[up - 1] if up else omniglot_tree
    ds = load_dataset("omniglot", root=root)
    assert ds.root == omniglot_tree
    assert (ds.in_channels, ds.image_size) == (1, 28)
    assert len(ds) == 6 * 4 and ds.num_classes == 6  # half of 12 characters
    assert all(name.startswith("Alphabet_") and "/character" in name for name in ds.class_names)
    assert ds.sample_ids[0].count("/") == 2 and ds.sample_ids[0].endswith(".png")


def test_character_protocol_is_class_disjoint_and_seeded(omniglot_tree):
    train = load_dataset("omniglot", root=omniglot_tree, seed=4)
    test = load_dataset("omniglot", root=omniglot_tree, split="test", seed=4)
    assert not set(train.class_names) & set(test.class_names)
    assert len(train.class_names) + len(test.class_names) == 12
    assert load_dataset("omniglot", root=omniglot_tree, seed=4).class_names == train.class_names
    seeds = {
        tuple(load_dataset("omniglot", root=omniglot_tree, seed=s).class_names) for s in range(4)
    }
    assert len(seeds) > 1


def test_alphabet_protocol_keeps_whole_alphabets_apart(omniglot_tree):
    train = load_dataset("omniglot", root=omniglot_tree, protocol="alphabets")
    test = load_dataset("omniglot", root=omniglot_tree, protocol="alphabets", split="test")
    alphabets = [{n.split("/")[0] for n in ds.class_names} for ds in (train, test)]
    assert len(alphabets[0]) == len(alphabets[1]) == 2
    assert not alphabets[0] & alphabets[1]
    assert train.num_classes == test.num_classes == 6


def test_images_are_inverted_resized_cached_and_shifted(omniglot_tree):
    ds = load_dataset("omniglot", root=omniglot_tree)
    image, label, index = ds[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert image[0, 0, 0] == 0 and image.max() == 1  # paper dark, ink bright
    assert ds._cached[0]  # decoded once
    assert torch.equal(ds[0][0], image)
    thumbnail = ds.image(0)
    assert thumbnail.size == (105, 105) and thumbnail.mode == "L"
    assert np.asarray(thumbnail)[0, 0] == 255  # thumbnails as drawn: dark ink on white
    augmented = load_dataset("omniglot", root=omniglot_tree, augment=True, image_size=20)
    torch.manual_seed(0)
    shapes = {augmented[i][0].shape for i in range(len(augmented))}
    assert shapes == {(1, 20, 20)}


def test_a_zip_is_unpacked_once_into_the_cache(omniglot_zip, tmp_path):
    ds = load_dataset("omniglot", root=omniglot_zip)
    assert ds.root.is_relative_to(tmp_path / "cache")
    assert ds.root.name == "images_background_tiny"
    marker = next((tmp_path / "cache").glob("*/.dmlviz-unzipped"))
    before = marker.stat().st_mtime_ns
    again = load_dataset("omniglot", root=omniglot_zip)
    assert again.sample_ids == ds.sample_ids
    assert marker.stat().st_mtime_ns == before


def test_a_process_that_unzips_second_keeps_the_first_ones_tree(omniglot_zip, monkeypatch):
    """Two trainers started together both unpack; the later one must not delete the tree the
    earlier one already moved into place and is reading."""
    import zipfile

    from dmlviz.data import omniglot

    extract = zipfile.ZipFile.extractall
    finished_first = {}

    def other_process_finishes_meanwhile(self, path, *args, **kwargs):
        monkeypatch.setattr(zipfile.ZipFile, "extractall", extract)
        finished_first["dest"] = omniglot._unzip(omniglot_zip)  # the other process, complete
        finished_first["file"] = next(finished_first["dest"].rglob("*.png"))
        finished_first["inode"] = finished_first["file"].stat().st_ino
        return extract(self, path, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "extractall", other_process_finishes_meanwhile)
    dest = omniglot._unzip(omniglot_zip)
    assert dest == finished_first["dest"]
    assert finished_first["file"].stat().st_ino == finished_first["inode"]  # not replaced
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_missing_root_says_how_to_get_omniglot(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True") as error:
        load_dataset("omniglot")
    assert "<alphabet>/<character>" in str(error.value)
    # the command line has no download flag: the message gives the CLI way too
    assert "--dataset-root images_background.zip" in str(error.value)
    with pytest.raises(DatasetNotFoundError, match=f"nothing usable at {tmp_path}"):
        load_dataset("omniglot", root=tmp_path)


def test_the_real_small_background_set():
    archive = shared_path("data", "omniglot", "images_background_small1.zip")
    train = load_dataset("omniglot", root=archive)
    test = load_dataset("omniglot", root=archive, split="test")
    assert len(train) + len(test) == 2720
    assert train.num_classes + test.num_classes == 136
    assert np.bincount(train.labels).tolist() == [20] * train.num_classes
    assert not set(train.class_names) & set(test.class_names)
    assert {n.split("/")[0] for n in train.class_names + test.class_names} == {
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    }
    image = test[5][0]
    assert image.shape == (1, 28, 28) and 0 < image.mean() < 0.5
