"""Splits the user decides: split folders, a second tree that tests, and the layout's name."""

import pytest
from dataset_trees import make_folder, write_image
from PIL import Image

from dmlviz.data import DatasetNotFoundError, load_dataset, split_layout


def _tree(root, classes, images=3, size=(10, 8)):
    """``root/<class>/<k>.png`` for each class name."""
    for c, name in enumerate(classes):
        for k in range(images):
            write_image(root / name / f"{k}.png", seed=100 * c + k, size=size)
    return root


def _omniglot(root, alphabets, characters=2, drawings=3):
    """``root/<alphabet>/characterNN/*.png``, black ink on white."""
    for alphabet in alphabets:
        for c in range(characters):
            for k in range(drawings):
                image = Image.new("L", (30, 30), 255)
                image.paste(0, (3 * c + 2, 2, 3 * c + 12, 10 + 3 * k))
                path = root / alphabet / f"character{c + 1:02d}" / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
    return root


def test_train_and_test_folders_are_used_as_given(tmp_path):
    _tree(tmp_path / "train", ["cat", "dog", "fox"])
    _tree(tmp_path / "test", ["dog", "owl"], images=2)
    assert split_layout("folder", tmp_path).name == "train/test folders"
    assert split_layout("folder", tmp_path).held_out == ("test",)
    train = load_dataset("folder", root=tmp_path, image_size=8)
    test = load_dataset("folder", root=tmp_path, split="test", image_size=8)
    assert train.class_names == ["cat", "dog", "fox"] and len(train) == 9
    assert test.class_names == ["dog", "owl"] and len(test) == 4
    assert test.sample_ids[0] == "test/dog/0.png"
    assert [test.class_names[y] for y in test.labels] == ["dog", "dog", "owl", "owl"]
    assert load_dataset("folder", root=tmp_path, seed=5).class_names == train.class_names


def test_a_val_folder_is_the_val_split(tmp_path):
    for split, classes in (("train", ["a", "b"]), ("val", ["c", "d"]), ("test", ["e", "f"])):
        _tree(tmp_path / split, classes)
    layout = split_layout("folder", tmp_path)
    assert (layout.name, layout.held_out) == ("train/val/test folders", ("val", "test"))
    assert load_dataset("folder", root=tmp_path, split="val").class_names == ["c", "d"]
    assert load_dataset("folder", root=tmp_path).class_names == ["a", "b"]
    # val_fraction still holds classes out of train/ (cross-validation folds)
    held = load_dataset("folder", root=tmp_path, split="val", val_fraction=0.5)
    assert held.class_names in (["a"], ["b"])


def test_query_and_gallery_folders_share_one_label_space(tmp_path):
    _tree(tmp_path / "train", ["a", "b"])
    _tree(tmp_path / "query", ["x", "y"], images=1)
    _tree(tmp_path / "gallery", ["w", "x", "y"], images=2)
    layout = split_layout("folder", tmp_path)
    assert (layout.name, layout.held_out) == ("train/query/gallery folders", ("query", "gallery"))
    query = load_dataset("folder", root=tmp_path, split="query")
    gallery = load_dataset("folder", root=tmp_path, split="gallery")
    assert query.class_names == gallery.class_names == ["w", "x", "y"]
    assert [query.class_names[y] for y in query.labels] == ["x", "y"]
    with pytest.raises(ValueError, match="split='query'.*split='gallery'"):
        load_dataset("folder", root=tmp_path, split="test")


def test_without_split_folders_the_seeded_class_split_stays(tmp_path):
    root = make_folder(tmp_path)
    layout = split_layout("folder", root)
    assert (layout.name, layout.held_out) == ("seeded class split", ("test",))
    train = load_dataset("folder", root=root)
    test = load_dataset("folder", root=root, split="test")
    assert train.num_classes == test.num_classes == 3
    assert not set(train.class_names) & set(test.class_names)


@pytest.mark.parametrize(
    ("folders", "message"),
    [
        (["train", "query"], "holds train/ but no test/"),
        (["train", "test", "gallery"], "holds test/ and query/ or gallery/"),
    ],
)
def test_incomplete_or_mixed_split_folders_are_refused(tmp_path, folders, message):
    for folder in folders:
        _tree(tmp_path / folder, ["a", "b"])
    with pytest.raises(DatasetNotFoundError, match=message):
        load_dataset("folder", root=tmp_path)


def test_a_folder_test_root_tests_and_classes_match_by_name(tmp_path):
    train_root = _tree(tmp_path / "mine", ["bag", "hat", "shoe"])
    test_root = _tree(tmp_path / "theirs", ["hat", "scarf"], images=2)
    layout = split_layout("folder", train_root, test_root)
    assert (layout.name, layout.held_out) == ("separate test tree", ("test",))
    train = load_dataset("folder", root=train_root, test_root=test_root)
    test = load_dataset("folder", root=train_root, test_root=test_root, split="test")
    assert train.class_names == ["bag", "hat", "shoe"] and len(train) == 9  # every class trains
    assert test.class_names == ["hat", "scarf"] and test.root == test_root
    assert test.sample_ids == ["hat/0.png", "hat/1.png", "scarf/0.png", "scarf/1.png"]
    assert len(set(train.class_names) & set(test.class_names)) == 1


def test_a_test_root_beside_split_folders_is_refused(tmp_path):
    _tree(tmp_path / "data" / "train", ["a", "b"])
    _tree(tmp_path / "data" / "test", ["c", "d"])
    other = _tree(tmp_path / "other", ["e", "f"])
    with pytest.raises(DatasetNotFoundError, match="split folders .* and a test root"):
        load_dataset("folder", root=tmp_path / "data", test_root=other)


def test_test_root_is_only_for_trees(tmp_path):
    with pytest.raises(ValueError, match="test_root is only for omniglot, folder, not digits"):
        load_dataset("digits", test_root=tmp_path)


def test_omniglot_trains_on_background_and_tests_on_evaluation(tmp_path):
    download = tmp_path / "omniglot-py"  # both sets, as torchvision downloads them
    background = _omniglot(download / "images_background", ["Greek", "Latin"])
    evaluation = _omniglot(download / "images_evaluation", ["Atlantean", "Latin"], characters=1)
    assert split_layout("omniglot", background, evaluation).name == "separate test tree"
    train = load_dataset("omniglot", root=tmp_path, test_root=tmp_path)  # each finds its set
    test = load_dataset("omniglot", root=tmp_path, test_root=tmp_path, split="test")
    assert train.root == background and test.root == evaluation
    assert train.num_classes == 4 and len(train) == 12  # every background character trains
    assert test.class_names == ["Atlantean/character01", "Latin/character01"]
    assert set(train.class_names) & set(test.class_names) == {"Latin/character01"}
    assert test[0][0].shape == (1, 28, 28)
    assert split_layout("omniglot", background).name == "seeded class split"


def test_digits_warns_that_a_root_is_ignored(tmp_path):
    with pytest.warns(UserWarning, match="is ignored: digits ships with scikit-learn"):
        load_dataset("digits", root=tmp_path)
