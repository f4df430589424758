"""CUB-200-2011, Cars196, SOP and In-shop parsed from tiny trees in their official layouts."""

import numpy as np
import pytest
import torch
from dataset_trees import make_cars, make_cub, make_inshop, make_sop
from PIL import Image

from dmlviz.data import DatasetFormatError, DatasetNotFoundError, load_dataset


@pytest.fixture
def cub_root(tmp_path):
    return make_cub(tmp_path)


@pytest.fixture
def cars_root(tmp_path):
    return make_cars(tmp_path)


@pytest.fixture
def sop_root(tmp_path):
    return make_sop(tmp_path)


@pytest.fixture
def inshop_root(tmp_path):
    return make_inshop(tmp_path)


def _check_split(ds, n, class_names, channels=3, size=32):
    assert len(ds) == n
    assert ds.class_names == class_names
    assert ds.num_classes == len(class_names)
    assert ds.labels.dtype == np.int64
    assert sorted(set(ds.labels.tolist())) == list(range(len(class_names)))
    assert len(ds.sample_ids) == n and len(set(ds.sample_ids)) == n
    image, label, index = ds[n - 1]
    assert image.shape == (channels, size, size) and image.dtype == torch.float32
    assert (label, index) == (int(ds.labels[-1]), n - 1)
    assert isinstance(ds.image(0), Image.Image) and ds.image(0).mode == "RGB"


def test_cub200_splits_classes_1_to_100_from_101_to_200(cub_root):
    train = load_dataset("cub200", root=cub_root, split="train", image_size=32)
    test = load_dataset("cub200", root=cub_root, split="test", image_size=32)
    _check_split(train, 9, ["001.Bird_1", "002.Bird_2", "003.Bird_3"])
    _check_split(test, 6, ["101.Bird_101", "102.Bird_102"])
    assert train.sample_ids[0] == "001.Bird_1/Bird_1_0000.jpg"
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert (train.in_channels, train.protocol) == (3, "classes")


def test_cub200_root_may_be_the_folder_above_and_classes_txt_is_optional(cub_root):
    (cub_root / "classes.txt").unlink()
    ds = load_dataset("cub200", root=cub_root.parent, split="test", image_size=32)
    assert ds.class_names == ["101.Bird_101", "102.Bird_102"]  # from the image folders


def test_cars196_splits_classes_1_to_98_from_99_to_196(cars_root):
    train = load_dataset("cars196", root=cars_root, image_size=32)
    test = load_dataset("cars196", root=cars_root, split="test", image_size=32)
    _check_split(train, 9, ["Make Model 1 2012", "Make Model 2 2012", "Make Model 98 2012"])
    _check_split(test, 6, ["Make Model 99 2012", "Make Model 196 2012"])
    assert train.sample_ids[0] == "car_ims/000001.jpg"


def test_cars196_unreadable_annotations_say_what_is_expected(cars_root):
    (cars_root / "cars_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetNotFoundError, match="(?s)cannot read .*cars_annos.mat.*class_names"):
        load_dataset("cars196", root=cars_root)


def test_sop_reads_ebay_train_and_test(sop_root):
    train = load_dataset("sop", root=sop_root.parent, image_size=32)
    test = load_dataset("sop", root=sop_root, split="test", image_size=32)
    _check_split(
        train,
        9,
        ["bicycle_final/111085122871", "bicycle_final/111265328556", "cabinet_final/110719127231"],
    )
    _check_split(test, 6, ["bicycle_final/251952414262", "chair_final/300434426549"])
    assert test.sample_ids[0] == "bicycle_final/251952414262_0.JPG"


def test_sop_malformed_line_names_file_and_line(sop_root):
    table = sop_root / "Ebay_train.txt"
    table.write_text(table.read_text() + "oops\n")
    with pytest.raises(DatasetFormatError, match=r"Ebay_train.txt, line 11: cannot parse 'oops'"):
        load_dataset("sop", root=sop_root)


def test_inshop_query_and_gallery_share_one_label_space(inshop_root):
    train = load_dataset("inshop", root=inshop_root, image_size=32)
    query = load_dataset("inshop", root=inshop_root, split="query", image_size=32)
    gallery = load_dataset("inshop", root=inshop_root, split="gallery", image_size=32)
    _check_split(train, 5, ["id_00000001", "id_00000002"])
    items = ["id_00000003", "id_00000004", "id_00000005"]
    assert query.class_names == gallery.class_names == items
    assert query.labels.tolist() == [0, 1, 1]
    assert gallery.labels.tolist() == [0, 0, 1, 2, 2]
    assert query.sample_ids[0] == "img/WOMEN/Dresses/id_00000003/01_1_front.jpg"
    assert gallery[0][0].shape == (3, 32, 32)


def test_inshop_has_no_test_split(inshop_root):
    with pytest.raises(ValueError, match="split='query'.*split='gallery'"):
        load_dataset("inshop", root=inshop_root, split="test")
    with pytest.raises(ValueError, match="split='query' is invalid for cub200"):
        load_dataset("cub200", root=".", split="query")


def test_inshop_images_missing_says_to_unzip(inshop_root):
    (inshop_root / "Img").rename(inshop_root / "elsewhere")
    with pytest.raises(DatasetNotFoundError, match="unzip Img/img.zip"):
        load_dataset("inshop", root=inshop_root)


@pytest.mark.parametrize(
    ("name", "url", "marker"),
    [
        ("cub200", "caltech.edu", "image_class_labels.txt"),
        ("cars196", "stanford.edu", "cars_annos.mat"),
        ("sop", "cvgl.stanford.edu", "Ebay_train.txt"),
        ("inshop", "DeepFashion", "list_eval_partition.txt"),
    ],
)
def test_missing_root_says_where_to_download_and_the_layout(tmp_path, name, url, marker):
    with pytest.raises(DatasetNotFoundError, match="no root was given") as no_root:
        load_dataset(name)
    assert url in str(no_root.value) and marker in str(no_root.value)
    with pytest.raises(DatasetNotFoundError, match=f"nothing usable at {tmp_path}") as wrong:
        load_dataset(name, root=tmp_path)
    assert url in str(wrong.value) and marker in str(wrong.value)
    assert isinstance(wrong.value, ValueError)  # the CLI reports it as a bad argument


def test_val_split_holds_out_train_classes(cub_root):
    train = load_dataset("cub200", root=cub_root, image_size=32, val_fraction=0.34, seed=3)
    val = load_dataset(
        "cub200", root=cub_root, split="val", image_size=32, val_fraction=0.34, seed=3
    )
    assert len(val.class_names) == 1 and len(train.class_names) == 2
    assert not set(train.class_names) & set(val.class_names)
    assert set(train.class_names) | set(val.class_names) == {
        "001.Bird_1",
        "002.Bird_2",
        "003.Bird_3",
    }
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    again = load_dataset(
        "cub200", root=cub_root, split="val", image_size=32, val_fraction=0.34, seed=3
    )
    assert again.sample_ids == val.sample_ids
