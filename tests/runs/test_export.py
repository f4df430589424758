"""``dmlviz export RUN --out DIR`` (``dmlviz.runs.export``): every split the run has, written as
the files ``dmlviz import`` reads back, and an ``--out`` that cannot or should not take them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dmlviz.cli import main
from dmlviz.jobs.lock import TrainingLock
from dmlviz.runs import Run, RunError, import_embeddings
from dmlviz.runs.export import export_run, reimport_command

N, DIM, CLASSES = 24, 8, 4


def _embeddings(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % CLASSES
    centres = 3 * rng.standard_normal((CLASSES, DIM))
    return (centres[labels] + rng.standard_normal((N, DIM))).astype(np.float32), labels


@pytest.fixture
def shop(tmp_path) -> Run:
    """A run imported from an OML CSV whose is_query / is_gallery flags split validation."""
    embeddings, labels = _embeddings(0)
    np.save(tmp_path / "validation.npy", embeddings)
    np.save(tmp_path / "train.npy", _embeddings(1)[0])
    (tmp_path / "images").mkdir()
    rows = []
    for split in ("validation", "train"):
        for i in range(N):
            Image.new("RGB", (6, 6), (10 * i, 9, 9)).save(tmp_path / "images" / f"{i}.png")
            rows.append({"label": f"item-{labels[i]}", "path": f"images/{i}.png", "split": split,
                         "is_query": (i < 8) if split == "validation" else "",
                         "is_gallery": (i >= 8) if split == "validation" else ""})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "oml.csv", index=False)
    return import_embeddings(
        tmp_path / "shop",
        tmp_path / "validation.npy",
        csv=tmp_path / "oml.csv",
        train_embeddings=tmp_path / "train.npy",
    )


def test_query_and_gallery_are_exported_and_read_back(shop, tmp_path, capsys):
    assert main(["export", str(shop.path), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for split in ("query", "gallery", "train"):
        assert (out / f"{split}.npy").is_file() and (out / f"{split}_labels.txt").is_file()
        assert (out / f"{split}_paths.txt").is_file()
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint.startswith("read back with: dmlviz import --out NEW_RUN")
    arguments = hint.removeprefix("read back with: dmlviz ").split()
    arguments[arguments.index("NEW_RUN")] = str(tmp_path / "again")
    assert main(arguments) == 0
    again = Run.load(tmp_path / "again")
    for split in ("query", "gallery", "train"):
        np.testing.assert_allclose(again.embeddings(split)[0], shop.embeddings(split)[0], atol=1e-6)
        assert list(again.dataset(split).paths) == list(shop.dataset(split).paths)
    assert not again.has_embeddings("test")


def test_a_non_empty_folder_is_refused_unless_forced(shop, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(RunError, match=r"is not empty \(mine.txt\).*--force"):
        export_run(shop, out)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    export_run(shop, out, images=False, force=True)
    (out / "query.npy").write_bytes(b"old")
    written = export_run(shop, out, force=True)
    assert (out / "mine.txt").read_text() == "mine"
    assert np.load(out / "query.npy").shape == (8, DIM)
    assert set(written) >= {"query_embeddings", "gallery_paths", "train_labels"}
    assert not [p for p in tmp_path.iterdir() if ".exporting-" in p.name]


def test_an_out_that_is_a_file_or_cannot_be_made_is_one_line(shop, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["export", str(shop.path), "--out", str(tmp_path / "file")]) == 2
    assert "argument --out: " in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == ""
    assert main(["export", str(shop.path), "--out", "/proc/dmlviz-export"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --out: cannot write to /proc" in err


def test_a_run_without_embeddings_is_told_how_to_make_them(shop, tmp_path, make_run):
    trained = make_run(tmp_path / "trained", splits=(), dim=8)
    with pytest.raises(RunError, match=r"run `dmlviz embed .*trained`"):
        export_run(trained, tmp_path / "out")
    for split in ("query", "gallery", "train"):
        (shop.path / "embeddings" / f"{split}.npz").unlink()
    with pytest.raises(RunError, match="an imported run has no model.*dmlviz import"):
        export_run(shop, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_run_being_trained_is_not_exported(shop, tmp_path, capsys):
    lock = TrainingLock(shop.path)
    lock.acquire()
    try:
        for out in ("out", "report.html"):
            assert main(["export", str(shop.path), "--out", str(tmp_path / out)]) == 2
            err = capsys.readouterr().err
            assert "is being trained right now (pid" in err and "train.lock" in err
            assert not (tmp_path / out).exists()
    finally:
        lock.release()


def test_the_reimport_command_quotes_paths():
    written = {"test_embeddings": Path("my dir/test.npy"), "test_labels": Path("l.txt")}
    assert reimport_command(written) == (
        "dmlviz import --out NEW_RUN --embeddings 'my dir/test.npy' --labels l.txt"
    )
