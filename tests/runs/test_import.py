"""``dmlviz import``: every embeddings and labels format, image paths and OML CSVs, the bad inputs
(each a clear error that leaves nothing behind), and the imported run read like a trained one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dmlviz.cli import main
from dmlviz.evaluate import evaluate_run
from dmlviz.project import project_run
from dmlviz.runs import (
    ImportInputError,
    Run,
    RunError,
    find_runs,
    import_embeddings,
    imported_info,
)
from dmlviz.views.data import load_split
from dmlviz.views.partners import compatible
from dmlviz.views.thumbs import ThumbnailCache, placeholder_uri

N, DIM, CLASSES = 24, 8, 4


def _embeddings(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``N`` embeddings near one of ``CLASSES`` centres each, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % CLASSES
    centres = 3 * rng.standard_normal((CLASSES, DIM))
    return (centres[labels] + rng.standard_normal((N, DIM))).astype(np.float32), labels


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Test and train embeddings (.npy), labels (text), image paths (relative) and PNGs."""
    embeddings, labels = _embeddings()
    images = tmp_path / "images"
    images.mkdir()
    for i in range(N):
        Image.new("RGB", (16, 12), (10 * i, 80, 200)).save(images / f"{i}.png")
    np.save(tmp_path / "test.npy", embeddings)
    np.save(tmp_path / "train.npy", _embeddings(1)[0])
    (tmp_path / "labels.txt").write_text("".join(f"class-{c}\n" for c in labels))
    (tmp_path / "paths.txt").write_text("".join(f"images/{i}.png\n" for i in range(N)))
    clean = labels.copy()
    clean[:3] = (clean[:3] + 1) % CLASSES  # three training labels were wrong
    (tmp_path / "train_labels.txt").write_text("".join(f"class-{c}\n" for c in labels))
    (tmp_path / "clean.txt").write_text("".join(f"class-{c}\n" for c in clean))
    return {
        "embeddings": tmp_path / "test.npy",
        "labels": tmp_path / "labels.txt",
        "images": tmp_path / "paths.txt",
        "train_embeddings": tmp_path / "train.npy",
        "train_labels": tmp_path / "train_labels.txt",
        "clean_labels": tmp_path / "clean.txt",
    }


def _nothing_left(folder: Path, out: Path) -> None:
    assert not out.exists()
    assert not [p for p in folder.iterdir() if ".importing-" in p.name]


# -- formats -----------------------------------------------------------------------------------------


def _write(path: Path, embeddings: np.ndarray) -> Path:
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, embeddings)
    elif suffix == ".npz":
        np.savez(path, embeddings=embeddings, ids=np.arange(len(embeddings)))
    elif suffix == ".safetensors":
        import torch
        from safetensors.torch import save_file

        save_file({"embeddings": torch.from_numpy(embeddings)}, str(path))
    elif suffix == ".pt":
        import torch

        torch.save({"embeddings": torch.from_numpy(embeddings).bfloat16()}, path)
    elif suffix == ".parquet":
        frame = pd.DataFrame({"id": range(len(embeddings)), "vector": list(embeddings)})
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".safetensors", ".pt", ".parquet"])
def test_every_embeddings_format_imports(tmp_path, files, suffix):
    embeddings, _ = _embeddings()
    source = _write(tmp_path / f"emb{suffix}", embeddings)
    run = import_embeddings(tmp_path / "run", source, files["labels"])
    stored, labels = run.embeddings("test")
    expected = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    atol = 1e-2 if suffix == ".pt" else 1e-6  # the .pt file holds bfloat16
    np.testing.assert_allclose(stored, expected, atol=atol)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3]
    assert run.dataset("test").class_names == [f"class-{c}" for c in range(CLASSES)]


def test_safetensors_and_pt_with_one_unnamed_tensor(tmp_path, files):
    import torch
    from safetensors.torch import save_file

    embeddings, _ = _embeddings()
    save_file({"feats": torch.from_numpy(embeddings)}, str(tmp_path / "a.safetensors"))
    torch.save(torch.from_numpy(embeddings), tmp_path / "a.pt")
    for i, name in enumerate(("a.safetensors", "a.pt")):
        run = import_embeddings(tmp_path / f"run{i}", tmp_path / name, files["labels"])
        assert run.embeddings("test")[0].shape == (N, DIM)


def test_parquet_fixed_size_list_column(tmp_path, files):
    import pyarrow as pa
    import pyarrow.parquet as pq

    embeddings, _ = _embeddings()
    column = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), DIM)
    pq.write_table(pa.table({"embedding": column}), tmp_path / "fixed.parquet")
    run = import_embeddings(tmp_path / "run", tmp_path / "fixed.parquet", files["labels"])
    assert run.embeddings("test")[0].shape == (N, DIM)


@pytest.mark.parametrize("kind", ["npy-int", "npy-str", "lines", "csv-column"])
def test_every_labels_format(tmp_path, files, kind):
    _, labels = _embeddings()
    if kind == "npy-int":
        path = tmp_path / "l.npy"
        np.save(path, labels + 10)
        names = ["10", "11", "12", "13"]
    elif kind == "npy-str":
        path = tmp_path / "l.npy"
        np.save(path, np.array([f"c{c}" for c in labels]))
        names = ["c0", "c1", "c2", "c3"]
    elif kind == "lines":
        path = files["labels"]
        names = [f"class-{c}" for c in range(CLASSES)]
    else:
        path = tmp_path / "l.csv"
        pd.DataFrame({"id": range(N), "label": labels * 5}).to_csv(path, index=False)
        names = ["0", "5", "10", "15"]  # integers sort as numbers
    run = import_embeddings(tmp_path / "run", files["embeddings"], path)
    assert run.dataset("test").class_names == names
    np.testing.assert_array_equal(run.embeddings("test")[1], labels)


def test_image_paths_relative_and_absolute(tmp_path, files):
    lines = files["images"].read_text().splitlines()
    lines[0] = str((tmp_path / "images" / "0.png").resolve())
    files["images"].write_text("\n".join(lines) + "\n")
    run = import_embeddings(tmp_path / "run", files["embeddings"], files["labels"], files["images"])
    images = run.dataset("test")
    assert Path(images.paths[0]) == (tmp_path / "images" / "0.png").resolve()
    assert Path(images.paths[5]) == (tmp_path / "images" / "5.png").resolve()
    assert images.image(3).size == (16, 12)
    assert imported_info(run)["warnings"] == []


# -- the run as the rest of dmlviz sees it ------------------------------------------------------------


def test_imported_run_evaluates_projects_and_lists(tmp_path, files):
    run = import_embeddings(tmp_path / "runs" / "mine", **files, name="my model")
    assert run.config["imported"] is True and run.config["loss"] is None
    results = evaluate_run(run)
    assert 0 < results["test"]["map@r"] <= 1
    consistency = results["consistency"]
    assert consistency["n_flipped"] == 3 and consistency["detector_auroc"] is not None
    noisy = run.labels()
    np.testing.assert_array_equal(np.flatnonzero(noisy.flipped), [0, 1, 2])
    assert project_run(run, methods=("pca",)) == {"train_pca": "computed", "test_pca": "computed"}
    (found,) = find_runs(tmp_path / "runs")
    summary = found.summary()
    assert summary["name"] == "my model" and summary["imported"] is True
    assert summary["state"] == "finished" and summary["detector_auroc"] is not None
    assert summary["noise_rate"] == pytest.approx(3 / N)
    with pytest.raises(RunError, match="imported embeddings: it has no model"):
        run.load_model()
    train = load_split(run, "train")
    assert train.flipped is not None and train.flipped[:3].all()


def test_without_clean_labels_consistency_has_no_flips(tmp_path, files):
    files.pop("clean_labels")
    run = import_embeddings(tmp_path / "run", **files)
    assert run.labels() is None
    summary = evaluate_run(run)["consistency"]
    assert summary["n_flipped"] == 0 and summary["detector_auroc"] is None


def test_two_imports_of_the_same_images_compare_in_the_lens(tmp_path, files):
    first = import_embeddings(tmp_path / "a", files["embeddings"], files["labels"], files["images"])
    np.save(tmp_path / "other.npy", _embeddings(7)[0])
    second = import_embeddings(
        tmp_path / "b", tmp_path / "other.npy", files["labels"], files["images"]
    )
    assert compatible(first.config, second.config)
    unrelated = import_embeddings(tmp_path / "c", files["embeddings"], files["labels"])
    assert not compatible(first.config, unrelated.config)
    trained = {"dataset": "digits", "protocol": "samples", "split_seed": 0}
    assert not compatible(first.config, trained)


def test_missing_image_warns_and_thumbnail_is_a_placeholder(tmp_path, files):
    (tmp_path / "images" / "4.png").unlink()
    (tmp_path / "images" / "9.png").unlink()
    with pytest.warns(UserWarning, match="2 of the test split's 24 image paths do not exist"):
        run = import_embeddings(
            tmp_path / "run", files["embeddings"], files["labels"], files["images"]
        )
    assert "2 of the test split's" in imported_info(run)["warnings"][0]
    thumbs = ThumbnailCache(run.dataset("test"))
    assert thumbs(4) == placeholder_uri()
    assert thumbs(5) != placeholder_uri()


def test_no_images_gives_placeholders(tmp_path, files):
    run = import_embeddings(tmp_path / "run", files["embeddings"], files["labels"])
    assert ThumbnailCache(run.dataset("test"))(0) == placeholder_uri()


# -- Open Metric Learning CSV ----------------------------------------------------------------------


def _oml(tmp_path: Path, flags: str = "both", box: bool = False) -> Path:
    """An OML CSV: 24 validation rows (the images fixture), then 24 train rows."""
    _, labels = _embeddings()
    rows = []
    for split in ("validation", "train"):
        for i in range(N):
            query = flags == "both" or (split == "validation" and i % 2 == 0)
            gallery = flags == "both" or (split == "validation" and i % 2 == 1)
            row = {
                "label": f"item-{labels[i]}",
                "path": f"images/{i}.png",
                "split": split,
                "is_query": query if split == "validation" else "",
                "is_gallery": gallery if split == "validation" else "",
            }
            if box:
                row.update(x_1=2, x_2=10, y_1=1, y_2=9)
            rows.append(row)
    path = tmp_path / "oml.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_oml_csv_every_row_against_the_rest(tmp_path, files):
    csv = _oml(tmp_path, box=True)
    run = import_embeddings(
        tmp_path / "run", files["embeddings"], csv=csv, train_embeddings=files["train_embeddings"]
    )
    assert {s for s in ("test", "train", "query") if run.has_embeddings(s)} == {"test", "train"}
    images = run.dataset("test")
    assert images.class_names == [f"item-{c}" for c in range(CLASSES)]
    assert images.image(0).size == (8, 8)  # cropped to the box
    assert evaluate_run(run)["test"]["reference_split"] == "test"


def test_oml_csv_queries_against_a_gallery(tmp_path, files):
    csv = _oml(tmp_path, flags="split")
    run = import_embeddings(tmp_path / "run", files["embeddings"], csv=csv)
    assert run.embeddings("query")[0].shape == (N // 2, DIM)
    assert run.embeddings("gallery")[0].shape == (N // 2, DIM)
    metrics = evaluate_run(run)["test"]
    assert (metrics["query_split"], metrics["reference_split"]) == ("query", "gallery")
    query = load_split(run, "query")
    assert query.reference_split == "gallery" and query.per_query is not None
    assert query.neighbours.max() < N // 2
    assert len(run.dataset("gallery")) == N // 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "valid"}, r"line 2\), column 'split': 'valid' is not train or validation"),
        ({"is_query": "maybe"}, r"line 2\), column 'is_query': 'maybe' is not a boolean"),
        ({"label": ""}, r"line 2\), column 'label': '' is empty"),
        (
            {"is_query": "False", "is_gallery": "False"},
            r"line 2\), column 'is_query': 'False' and is_gallery are both False",
        ),
    ],
)
def test_oml_csv_bad_value_names_line_and_column(tmp_path, files, change, message):
    csv = _oml(tmp_path)
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    for column, value in change.items():
        frame.loc[0, column] = value
    frame.to_csv(csv, index=False)
    with pytest.raises(ImportInputError, match=message):
        import_embeddings(tmp_path / "run", files["embeddings"], csv=csv)
    _nothing_left(tmp_path, tmp_path / "run")


def test_oml_csv_missing_column_and_wrong_row_count(tmp_path, files):
    csv = _oml(tmp_path)
    pd.read_csv(csv).drop(columns=["split"]).to_csv(tmp_path / "nosplit.csv", index=False)
    with pytest.raises(ImportInputError, match="column 'split' is missing"):
        import_embeddings(tmp_path / "run", files["embeddings"], csv=tmp_path / "nosplit.csv")
    np.save(tmp_path / "short.npy", _embeddings()[0][:10])
    with pytest.raises(ImportInputError, match="has 10 rows but .* has 24 validation rows"):
        import_embeddings(tmp_path / "run", tmp_path / "short.npy", csv=csv)
    with pytest.raises(ImportInputError, match="drop labels"):
        import_embeddings(tmp_path / "run", files["embeddings"], files["labels"], csv=csv)


# -- bad inputs: a clear error, nothing written ------------------------------------------------------


def _bad(tmp_path, files, **changes):
    arguments = {"embeddings": files["embeddings"], "labels": files["labels"], **changes}
    with pytest.raises(ImportInputError) as caught:
        import_embeddings(tmp_path / "out", **arguments)
    _nothing_left(tmp_path, tmp_path / "out")
    return str(caught.value)


def test_lengths_that_differ(tmp_path, files):
    (tmp_path / "few.txt").write_text("a\nb\n")
    assert "has 24 rows but" in _bad(tmp_path, files, labels=tmp_path / "few.txt")
    (tmp_path / "few_paths.txt").write_text("images/0.png\n")
    message = _bad(tmp_path, files, images=tmp_path / "few_paths.txt")
    assert "has 24 rows but" in message and "few_paths.txt has 1" in message


def test_nan_and_infinite_rows_are_named(tmp_path, files):
    embeddings, _ = _embeddings()
    embeddings[[3, 11], 2] = np.nan
    embeddings[17, 0] = np.inf
    np.save(tmp_path / "nan.npy", embeddings)
    message = _bad(tmp_path, files, embeddings=tmp_path / "nan.npy")
    assert "3 row(s) hold NaN or infinite values, first rows 3, 11, 17" in message


@pytest.mark.parametrize("shape", [(N,), (N, 2, 4)])
def test_arrays_that_are_not_2d(tmp_path, files, shape):
    np.save(tmp_path / "bad.npy", np.ones(shape, dtype=np.float32))
    assert "must be a 2-D array" in _bad(tmp_path, files, embeddings=tmp_path / "bad.npy")


def test_empty_files(tmp_path, files):
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "is empty" in _bad(tmp_path, files, embeddings=tmp_path / "empty.npy")
    (tmp_path / "empty.txt").write_text("\n\n")
    assert "is empty" in _bad(tmp_path, files, labels=tmp_path / "empty.txt")
    np.save(tmp_path / "rows0.npy", np.zeros((0, 4), dtype=np.float32))
    assert "holds no embeddings" in _bad(tmp_path, files, embeddings=tmp_path / "rows0.npy")


def test_a_csv_without_a_label_column(tmp_path, files):
    pd.DataFrame({"id": range(N), "class": range(N)}).to_csv(tmp_path / "l.csv", index=False)
    message = _bad(tmp_path, files, labels=tmp_path / "l.csv")
    assert "has 2 columns (id, class) but none named 'label'" in message


def test_a_single_class(tmp_path, files):
    (tmp_path / "one.txt").write_text("same\n" * N)
    message = _bad(tmp_path, files, labels=tmp_path / "one.txt")
    assert "every label of the test split is 'same'" in message


def test_files_that_are_not_what_their_suffix_says(tmp_path, files):
    for suffix in (".npy", ".npz", ".safetensors", ".pt", ".parquet"):
        fake = tmp_path / f"fake{suffix}"
        fake.write_text("id,value\n1,2\n")
        assert f"is not a valid {suffix} file" in _bad(tmp_path, files, embeddings=fake)
    np.save(tmp_path / "really.npy", _embeddings()[0])
    (tmp_path / "really.npy").rename(tmp_path / "really.npz")
    assert "is a .npy file, not .npz" in _bad(tmp_path, files, embeddings=tmp_path / "really.npz")
    (tmp_path / "labels_bin.txt").write_bytes(files["embeddings"].read_bytes())
    assert "binary file, not text" in _bad(tmp_path, files, labels=tmp_path / "labels_bin.txt")
    assert "must be a 1-D array" in _bad(tmp_path, files, labels=files["embeddings"])
    (tmp_path / "e.csv").write_text("1,2\n")
    assert "unknown embeddings format .csv" in _bad(tmp_path, files, embeddings=tmp_path / "e.csv")


def test_several_arrays_without_a_name(tmp_path, files):
    np.savez(tmp_path / "two.npz", a=_embeddings()[0], b=_embeddings()[0])
    message = _bad(tmp_path, files, embeddings=tmp_path / "two.npz")
    assert "holds 2 arrays (a, b); name the one to import 'embeddings'" in message


def test_clean_labels_and_train_files_need_each_other(tmp_path, files):
    assert "--train-embeddings and --train-labels" in _bad(
        tmp_path, files, train_embeddings=files["train_embeddings"]
    )
    assert "--clean-labels are the train split's" in _bad(
        tmp_path, files, clean_labels=files["clean_labels"]
    )


def test_out_must_be_new_or_empty(tmp_path, files):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ImportInputError, match="already exists and is not an empty folder"):
        import_embeddings(tmp_path / "out", files["embeddings"], files["labels"])
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    (tmp_path / "out" / "keep.txt").unlink()
    assert Run.load(import_embeddings(tmp_path / "out", files["embeddings"], files["labels"]).path)


# -- the command line ------------------------------------------------------------------------------


def test_cli_import_and_export_round_trip(tmp_path, files, capsys):
    (tmp_path / "images" / "0.png").unlink()
    out = tmp_path / "runs" / "mine"
    arguments = ["import", "--out", str(out), "--name", "CLI model"]
    for key, path in files.items():
        arguments += [f"--{key.replace('_', '-')}", str(path)]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "imported test 24, train 24 embeddings of 8 dimensions, 4 classes" in printed
    assert "warning: 1 of the test split's 24 image paths do not exist" in printed
    assert json.loads((out / "config.json").read_text())["name"] == "CLI model"

    assert main(["export", str(out), "--out", str(tmp_path / "exported")]) == 0
    exported = tmp_path / "exported"
    assert (exported / "train_clean_labels.txt").read_text() == files["clean_labels"].read_text()
    assert (exported / "train_labels.txt").read_text() == files["train_labels"].read_text()
    np.testing.assert_allclose(np.load(exported / "test.npy"), Run.load(out).embeddings("test")[0])
    assert len((exported / "test_paths.txt").read_text().splitlines()) == N


def test_cli_bad_input_exits_2_with_the_message(tmp_path, files, capsys):
    (tmp_path / "one.txt").write_text("same\n" * N)
    code = main(
        [
            "import",
            "--out",
            str(tmp_path / "x"),
            "--embeddings",
            str(files["embeddings"]),
            "--labels",
            str(tmp_path / "one.txt"),
        ]
    )
    assert code == 2
    assert (
        "dmlviz import: error: every label of the test split is 'same'" in capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


def test_oml_csv_is_checked_by_the_csv_datasets_reader(tmp_path, files):
    from dmlviz.data import DatasetFormatError, load_dataset

    csv = _oml(tmp_path, box=True)
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[0, "x_1"] = "-2"  # a check the import's own reader did not make
    frame.to_csv(csv, index=False)
    message = r"row 1 \(line 2\), column 'x_1': '-2' is not a whole number of pixels"
    with pytest.raises(ImportInputError, match=message):
        import_embeddings(tmp_path / "run", files["embeddings"], csv=csv)
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset("csv", root=csv)


def test_duplicate_rows_are_counted_in_a_warning(tmp_path, files, capsys):
    embeddings = np.load(files["embeddings"])
    embeddings[[3, 7, 11]] = embeddings[2]  # a collapsed corner: four identical rows
    np.save(files["embeddings"], embeddings)
    out = tmp_path / "dups"
    assert main(["import", "--out", str(out), "--embeddings", str(files["embeddings"]),
                 "--labels", str(files["labels"])]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "warning: 3 of the test split's 24 embeddings repeat an earlier row" in printed
    assert "1 distinct rows occur more than once" in printed


# -- faults of round 3: bad files, lone queries, folders, staging debris -----------------------


def test_a_text_file_named_npy_is_not_called_pickled(tmp_path, files):
    (tmp_path / "text.npy").write_text("1,2\n3,4\n")
    for key in ("embeddings", "labels"):
        message = _bad(tmp_path, files, **{key: tmp_path / "text.npy"})
        assert "is not a valid .npy file: it does not begin with numpy's header" in message
        assert "looks like text" in message and "pickled" not in message


def test_one_sample_per_class_is_warned_about_with_the_reason(tmp_path, files):
    (tmp_path / "single.txt").write_text("".join(f"c{i}\n" for i in range(N)))
    with pytest.warns(UserWarning, match="all 24 queries of the test split have no other sample"):
        run = import_embeddings(tmp_path / "run", files["embeddings"], tmp_path / "single.txt")
    assert "MAP@R and R@1 will be n/a" in imported_info(run)["warnings"][0]


def test_some_lone_queries_are_warned_about(tmp_path, files):
    labels = [f"c{i % CLASSES}" for i in range(N - 1)] + ["alone"]
    (tmp_path / "lone.txt").write_text("".join(f"{c}\n" for c in labels))
    with pytest.warns(UserWarning, match=r"1 of the test split's 24 queries .* \(first: alone\)"):
        import_embeddings(tmp_path / "run", files["embeddings"], tmp_path / "lone.txt")


def test_an_imported_run_folder_has_a_plain_folder_mode(tmp_path, files):
    run = import_embeddings(tmp_path / "run", files["embeddings"], files["labels"])
    umask = os.umask(0o022)
    os.umask(umask)
    assert run.path.stat().st_mode & 0o777 == 0o777 & ~umask


def test_staging_folders_of_a_killed_import_are_removed(tmp_path, files):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f".run.importing-{child.pid}-abcd1234"
    (dead / "embeddings").mkdir(parents=True)
    alive = tmp_path / f".run.importing-{os.getpid()}-abcd1234"
    alive.mkdir()
    import_embeddings(tmp_path / "run", files["embeddings"], files["labels"])
    assert not dead.exists() and alive.exists()


@pytest.mark.parametrize("out", ["/proc/dmlviz-x", "/sys/dmlviz-x/y"])
def test_an_out_that_cannot_be_made_is_one_line(tmp_path, files, capsys, out):
    code = main(["import", "--out", out, "--embeddings", str(files["embeddings"]),
                 "--labels", str(files["labels"])])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("dmlviz import: error: argument --out: cannot ")
    assert not Path(out).exists()


def test_an_out_below_a_file_leaves_nothing(tmp_path, files):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, so"):
        import_embeddings(tmp_path / "file" / "a" / "run", files["embeddings"], files["labels"])
    assert (tmp_path / "file").is_file()
    assert not [p for p in tmp_path.iterdir() if ".importing-" in p.name]


def test_next_hint_is_shell_quoted(tmp_path, files, capsys):
    out = tmp_path / "my runs" / "first run"
    assert main(["import", "--out", str(out), "--embeddings", str(files["embeddings"]),
                 "--labels", str(files["labels"])]) == 0  # fmt: skip
    quoted = shlex.quote(str(out))
    assert f"next: dmlviz evaluate {quoted} && dmlviz project {quoted}" in capsys.readouterr().out


def test_query_and_gallery_files_import_as_query_and_gallery(tmp_path, files):
    embeddings, _ = _embeddings()
    np.save(tmp_path / "q.npy", embeddings[:8])
    np.save(tmp_path / "g.npy", embeddings[8:])
    (tmp_path / "q.txt").write_text("".join(f"c{i % CLASSES}\n" for i in range(8)))
    (tmp_path / "g.txt").write_text("".join(f"c{i % CLASSES}\n" for i in range(8, N)))
    query = (tmp_path / "q.npy", tmp_path / "q.txt", None)
    gallery = (tmp_path / "g.npy", tmp_path / "g.txt", None)
    run = import_embeddings(tmp_path / "run", query=query, gallery=gallery)
    assert run.num_samples("query") == 8 and run.num_samples("gallery") == N - 8
    assert evaluate_run(run)["test"]["reference_split"] == "gallery"
    with pytest.raises(ImportInputError, match="give the evaluated samples once"):
        import_embeddings(tmp_path / "r2", files["embeddings"], files["labels"], query=query,
                          gallery=gallery)  # fmt: skip
    with pytest.raises(ImportInputError, match="--query-embeddings and --gallery-embeddings"):
        import_embeddings(tmp_path / "r2", query=query)
    with pytest.raises(ImportInputError, match="--labels and --images go with --embeddings"):
        import_embeddings(tmp_path / "r2", labels=files["labels"], query=query, gallery=gallery)
    with pytest.raises(ImportInputError, match="--query-labels and --query-images need --query-e"):
        import_embeddings(tmp_path / "r2", query=(None, query[1], None), gallery=gallery)
    assert not (tmp_path / "r2").exists()


def test_absolute_paths_joined_as_text_match_normpath(tmp_path):
    from dmlviz.runs.readers import absolute_paths

    paths = ["a/b.png", "./a.png", "a/../b.png", "a//b.png", "/abs/c.png", "a.b/c.d.png", "..x/y",
             "a/./b", "a/", "."]  # fmt: skip
    expected = [os.path.normpath(os.path.join(os.path.abspath(tmp_path), p)) for p in paths]
    assert absolute_paths(paths, tmp_path).tolist() == expected
