"""The csv dataset: a table in Open Metric Learning's retrieval format, each bad cell named."""

import numpy as np
import pandas as pd
import pytest
from dataset_trees import make_table
from PIL import Image

from dmlviz.data import DatasetFormatError, DatasetNotFoundError, load_dataset, split_layout


def test_train_and_validation_rows_become_train_and_test(tmp_path):
    make_table(tmp_path)
    layout = split_layout("csv", tmp_path)
    assert (layout.name, layout.held_out) == ("csv split column", ("test",))
    train = load_dataset("csv", root=tmp_path, image_size=16)
    test = load_dataset("csv", root=tmp_path, split="test", image_size=16)
    assert train.class_names == ["0", "1", "2"] and len(train) == 9
    assert test.class_names == ["10", "11"] and len(test) == 6  # numbers in numeric order
    assert train.sample_ids[0] == "images/0_0.png" and train.root == tmp_path
    assert train[0][0].shape == (3, 16, 16)


def test_the_csv_file_itself_may_be_the_root(tmp_path):
    table = make_table(tmp_path)
    moved = table.rename(tmp_path / "my_table.csv")
    assert len(load_dataset("csv", root=moved)) == 9


def test_query_and_gallery_flags_make_two_splits(tmp_path):
    flags = [(True, False), (False, True), (False, True)] * 2
    make_table(tmp_path, validation_flags=flags)
    layout = split_layout("csv", tmp_path)
    assert layout.held_out == ("query", "gallery")
    query = load_dataset("csv", root=tmp_path, split="query")
    gallery = load_dataset("csv", root=tmp_path, split="gallery")
    assert len(query) == 2 and len(gallery) == 4
    assert query.class_names == gallery.class_names == ["10", "11"]
    assert query.sample_ids == ["images/10_0.png", "images/11_0.png"]
    assert query.labels.tolist() == [0, 1] and gallery.labels.tolist() == [0, 0, 1, 1]


def test_the_crop_box_is_applied_when_the_image_is_read(tmp_path):
    make_table(tmp_path, box=True)
    train = load_dataset("csv", root=tmp_path, image_size=8)
    image = train.image(0)
    assert image.size == (10, 6)  # x_2 - x_1, y_2 - y_1
    whole = np.asarray(Image.open(tmp_path / train.sample_ids[0]).convert("RGB"))
    assert np.array_equal(np.asarray(image), whole[4:10, 2:12])


def test_rows_without_a_box_keep_the_whole_image(tmp_path):
    table_path = make_table(tmp_path, box=True)
    table = pd.read_csv(table_path)
    table.loc[0, ["x_1", "x_2", "y_1", "y_2"]] = None
    table.to_csv(table_path, index=False)
    train = load_dataset("csv", root=tmp_path)
    assert train.image(0).size == (20, 16) and train.image(1).size == (10, 6)


def _broken(tmp_path, change, **kwargs):
    table_path = make_table(tmp_path, **kwargs)
    table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
    table = change(table)
    table.to_csv(table_path, index=False)
    return tmp_path


def _set(row, column, value):
    def change(table):
        table.loc[row, column] = value
        return table

    return change


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda t: t.drop(columns="split"), {}, r"column 'split' is missing; the file has"),
        (lambda t: t.drop(columns="is_gallery"), {}, r"column 'is_gallery' is missing"),
        (lambda t: t.drop(columns="y_2"), {"box": True}, r"column 'y_2' is missing: a crop box"),
        (
            _set(4, "split", "valid"),
            {},
            r"row 5 \(line 6\), column 'split': 'valid' is not train or validation",
        ),
        (
            _set(10, "is_query", "maybe"),
            {},
            r"row 11 \(line 12\), column 'is_query': 'maybe' is not a boolean",
        ),
        (_set(2, "is_gallery", "yes please"), {}, r"row 3 \(line 4\), column 'is_gallery'"),
        (
            _set(12, "is_query", ""),
            {},
            r"row 13 \(line 14\), column 'is_query': '' is not a boolean",
        ),
        (_set(3, "label", ""), {}, r"row 4 \(line 5\), column 'label': '' is empty"),
        (
            _set(6, "path", "images/nope.png"),
            {},
            r"row 7 \(line 8\), column 'path': 'images/nope.png' names no file",
        ),
        (
            _set(1, "x_1", "12"),
            {"box": True},
            r"row 2 \(line 3\), column 'x_2': '12' is not greater than x_1",
        ),
        (
            _set(8, "y_1", "-3"),
            {"box": True},
            r"row 9 \(line 10\), column 'y_1': '-3' is not a whole number",
        ),
        (
            _set(0, "x_2", "3.5"),
            {"box": True},
            r"row 1 \(line 2\), column 'x_2': '3.5' is not a whole number",
        ),
        (
            _set(7, "x_2", "21"),
            {"box": True},
            r"row 8 \(line 9\), column 'x_2': '21' is beyond the image's width of 20 px",
        ),
        (
            _set(5, "y_1", ""),
            {"box": True},
            r"row 6 \(line 7\), column 'y_1': '' is empty but not all",
        ),
    ],
)
def test_every_bad_column_is_named_with_its_row(tmp_path, change, kwargs, message):
    root = _broken(tmp_path, change, **kwargs)
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset("csv", root=root)


def test_mixed_query_gallery_flags_are_refused_with_the_row(tmp_path):
    flags = [(True, True), (False, True), (True, False)] * 2
    make_table(tmp_path, validation_flags=flags)
    with pytest.raises(
        DatasetFormatError, match=r"row 10 \(line 11\), column 'is_query'.*both True"
    ):
        load_dataset("csv", root=tmp_path)
    flags = [(False, False), (False, True), (True, False)] * 2
    make_table(tmp_path, validation_flags=flags)
    with pytest.raises(DatasetFormatError, match=r"row 10 .*both False: never evaluated"):
        load_dataset("csv", root=tmp_path)


def test_a_missing_table_says_what_is_expected(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)df.csv .*label,path,split,is_query,is_gallery"
    ):
        load_dataset("csv", root=tmp_path)
