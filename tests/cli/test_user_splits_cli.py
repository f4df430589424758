"""`dmlviz train` on splits the user decides (csv, split folders, a test root), and the checks of
every split before a run folder is written."""

from pathlib import Path

import pytest
from dataset_trees import make_table, write_image

from dmlviz.cli import main
from dmlviz.runs import Run

TINY = ["--loss", "contrastive", "--model", "mlp", "--no-pretrained", "--image-size", "8",
        "--embedding-dim", "8", "--epochs", "1", "--batch-size", "6", "--m-per-class", "3",
        "--num-workers", "0", "--num-threads", "1", "--eval-every", "1", "--no-tensorboard",
        "--no-progress"]  # fmt: skip


def _tree(root, classes, images=3):
    for c, name in enumerate(classes):
        for k in range(images):
            write_image(root / name / f"{k}.png", seed=100 * c + k, size=(10, 8))
    return root


def test_train_on_a_csv_table_evaluates_and_runs_says_how_it_was_split(tmp_path, capsys):
    make_table(tmp_path / "data", box=True)
    out = tmp_path / "runs" / "csv-run"
    assert main(["train", "--dataset", "csv", "--dataset-root", str(tmp_path / "data"),
                 "--out", str(out), *TINY]) == 0  # fmt: skip
    run = Run.load(out)
    assert run.config["split_layout"] == "csv split column"
    assert run.config["test_classes_in_train"] == 0
    assert 0 <= run.eval_metrics("test")["map@r"] <= 1
    assert "map@r" in run.metrics().iloc[-1]
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "runs")]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "splits" in header and "test classes in train" in header
    assert "csv split column" in row


def test_csv_query_and_gallery_flags_evaluate_queries_in_the_gallery(tmp_path):
    flags = [(True, False), (False, True), (False, True)] * 2
    make_table(tmp_path / "data", validation_flags=flags)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "csv", "--dataset-root", str(tmp_path / "data" / "df.csv"),
                 "--out", str(out), *TINY]) == 0  # fmt: skip
    run = Run.load(out)
    metrics = run.eval_metrics("test")
    assert (metrics["query_split"], metrics["reference_split"]) == ("query", "gallery")
    assert run.has_embeddings("query") and run.has_embeddings("gallery")
    assert run.config["split_layout"] == "csv split column, query/gallery flags"


def test_train_test_folders_and_a_test_root_record_the_shared_classes(tmp_path):
    data = tmp_path / "data"
    _tree(data / "train", ["a", "b", "c"])
    _tree(data / "test", ["b", "c", "d"])
    out = tmp_path / "folders"
    assert main(["train", "--dataset", "folder", "--dataset-root", str(data), "--out", str(out),
                 *TINY, "--no-eval"]) == 0  # fmt: skip
    config = Run.load(out).config
    assert (config["split_layout"], config["test_classes_in_train"]) == ("train/test folders", 2)
    out = tmp_path / "test-root"
    assert main(["train", "--dataset", "folder", "--dataset-root", str(data / "train"),
                 "--test-root", str(_tree(tmp_path / "other", ["x", "y"])), "--out", str(out),
                 *TINY]) == 0  # fmt: skip
    run = Run.load(out)
    assert run.config["split_layout"] == "separate test tree"
    assert run.config["test_root"] == str(tmp_path / "other")
    assert run.config["test_classes_in_train"] == 0
    assert run.embeddings("test")[0].shape[0] == 6


def test_query_and_gallery_folders_evaluate_queries_in_the_gallery(tmp_path):
    data = tmp_path / "shop"
    _tree(data / "train", ["a", "b", "c"])
    _tree(data / "query", ["x", "y"], images=1)
    _tree(data / "gallery", ["x", "y", "z"], images=2)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--dataset-root", str(data), "--out", str(out),
                 *TINY]) == 0  # fmt: skip
    run = Run.load(out)
    assert run.config["split_layout"] == "train/query/gallery folders"
    assert run.config["test_classes_in_train"] == 0
    assert run.eval_metrics("test")["reference_split"] == "gallery"
    assert run.embeddings("gallery")[0].shape[0] == 6


def test_unreadable_test_images_leave_nothing_behind_and_the_command_runs_once_fixed(
    tmp_path, capsys
):
    data = tmp_path / "data"
    _tree(data / "train", ["a", "b"], images=20)
    _tree(data / "test", ["c", "d"], images=20)
    good = (data / "test" / "c" / "0.png").read_bytes()
    (data / "test" / "c" / "0.png").write_bytes(b"\x89PNG broken")  # 1 of 40: more than 1%
    out = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--dataset-root", str(data), "--out", str(out),
            *TINY, "--no-eval"]  # fmt: skip
    assert main(args) == 2
    assert "test/c/0.png" in capsys.readouterr().err
    assert not out.exists()
    (data / "test" / "c" / "0.png").write_bytes(good)
    assert main(args) == 0


def test_test_root_for_a_dataset_without_trees_is_a_flag_error(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--test-root", str(tmp_path), *TINY]) == 2
    assert "argument --test-root" in capsys.readouterr().err


def test_silent_settings_now_warn(tmp_path):
    with pytest.warns(UserWarning, match="is ignored: digits ships with scikit-learn"):
        main(["train", "--dataset", "digits", "--dataset-root", str(tmp_path), "--out",
              str(tmp_path / "d"), *TINY, "--no-eval"])  # fmt: skip
    data = _tree(tmp_path / "photos", ["a", "b", "c", "d"])
    with pytest.warns(RuntimeWarning, match=r"m=4 images per class .* more than 2 of the 2"):
        main(["train", "--dataset", "folder", "--dataset-root", str(data), "--out",
              str(tmp_path / "f"), *TINY, "--m-per-class", "4", "--batch-size", "8", "--no-eval"])  # fmt: skip


def _csv_with_validation(tmp_path, labels):
    """The csv table, its validation rows relabelled ``labels`` (dropped where None)."""
    import pandas as pd

    make_table(tmp_path / "data")
    csv = tmp_path / "data" / "df.csv"
    table = pd.read_csv(csv)
    validation = table.index[table["split"] == "validation"]
    keep = [i for i, label in zip(validation, labels, strict=True) if label is not None]
    table = table.drop(index=[i for i in validation if i not in keep])
    table.loc[keep, "label"] = [label for label in labels if label is not None]
    table.to_csv(csv, index=False)
    return csv


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_a_test_split_of_one_class_is_refused_as_import_refuses_it(tmp_path, capsys, layout):
    if layout == "csv":
        root = _csv_with_validation(tmp_path, [10] * 6)
        where = "the CSV rows with split 'validation'"
    else:
        root = tmp_path / "data"
        _tree(root / "train", ["a", "b"])
        _tree(root / "test", ["c"])
        where = "root"
    out = tmp_path / "run"
    assert main(["train", "--dataset", layout, "--dataset-root", str(root), "--out", str(out),
                 *TINY]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "every image of the test split of" in err and where in err
    assert "retrieval needs at least two classes" in err
    assert not out.exists()


def test_an_empty_csv_test_split_names_the_split_value(tmp_path, capsys):
    csv = _csv_with_validation(tmp_path, [None] * 6)
    assert main(["train", "--dataset", "csv", "--dataset-root", str(csv), *TINY]) == 2
    assert "is empty (root" in (err := capsys.readouterr().err)
    assert "it is the CSV rows with split 'validation'" in err


def test_a_missing_test_root_is_named_as_such(tmp_path, capsys):
    data = _tree(tmp_path / "photos", ["a", "b"])
    missing = tmp_path / "nonexist"
    assert main(["train", "--dataset", "folder", "--dataset-root", str(data), "--test-root",
                 str(missing), "--out", str(tmp_path / "r"), *TINY]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"the test root {missing} does not exist" in err and "--test-root" in err


def test_query_only_classes_are_told_on_the_console_and_hints_are_quoted(tmp_path, capsys):
    data = tmp_path / "shop"
    _tree(data / "train", ["a", "b", "c"])
    _tree(data / "query", ["x", "y", "w"], images=1)  # w has no gallery image
    _tree(data / "gallery", ["x", "y", "z"], images=2)
    out = tmp_path / "my runs" / "run"
    assert main(["train", "--dataset", "folder", "--dataset-root", str(data), "--out", str(out),
                 *TINY]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "1 of 3 queries have no sample of their class in the gallery" in printed
    assert f"dmlviz runs '{tmp_path / 'my runs'}'" in printed
    # and export writes every split of the folder run, query and gallery included
    assert main(["export", str(out), "--out", str(tmp_path / "files")]) == 0
    for split, count in (("query", 3), ("gallery", 6), ("train", 9)):
        assert len((tmp_path / "files" / f"{split}_labels.txt").read_text().splitlines()) == count
        paths = (tmp_path / "files" / f"{split}_paths.txt").read_text().splitlines()
        assert len(paths) == count and all(Path(p).is_file() for p in paths)
