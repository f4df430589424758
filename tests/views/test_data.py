"""Loading what the pages show from a run directory."""

import os

import numpy as np
import pytest

from dmlviz.evaluate import evaluate_run
from dmlviz.project import project_run
from dmlviz.runs import RunError
from dmlviz.views.data import (
    embedded_splits,
    file_stamp,
    list_runs,
    load_map,
    load_split,
    map_methods,
    runs_stamp,
    split_stamp,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_run):
    """A tiny evaluated run with noisy train labels and PCA maps (blob 'embeddings')."""
    config = {"noise_rate": 0.25, "noise_kind": "symmetric", "seed": 0}
    run = make_run(tmp_path_factory.mktemp("runs") / "r", splits=("train", "test"), n=40,
                   classes=4, noise_rate=0.25, config=config)  # fmt: skip
    evaluate_run(run, k=5, top_k=8)
    project_run(run, methods=("pca",))
    return run


def test_load_split(run):
    assert embedded_splits(run) == ["test", "train"]
    train = load_split(run, "train")
    assert train.observed is not None and train.flipped.sum() > 0
    assert train.consistency is not None and train.neighbours.shape == (40, 8)
    assert train.problems == [] and train.reference_split == "train"
    test = load_split(run, "test")
    assert test.observed is None and test.consistency is None
    with pytest.raises(RunError, match="embed"):
        load_split(run, "val")


def test_load_map(run):
    assert map_methods(run, "train") == ["pca"]
    frame, meta = load_map(run, "train", "pca", load_split(run, "train"), ["a", "b", "c", "d"])
    assert len(frame) == 40 and {"flipped", "ap@r", "consistency"} <= set(frame.columns)
    assert "trustworthiness" in meta
    with pytest.raises(RunError, match="dmlviz project"):
        load_map(run, "train", "umap", load_split(run, "train"), None)


def test_unevaluated_split_says_what_to_run(tmp_path, make_run):
    run = make_run(tmp_path / "fresh", n=2, classes=2, dim=2)
    data = load_split(run, "test")
    assert data.neighbours is None and "dmlviz evaluate" in data.problems[0]


def test_stamps_follow_file_changes(run, tmp_path):
    before = split_stamp(run.path, "train")
    path = run.path / "eval" / "train_per_query.parquet"
    os.utime(path, ns=(1, 1))
    assert split_stamp(run.path, "train") != before
    assert file_stamp(run.path, "nope.json") == (0,)
    assert runs_stamp(tmp_path / "missing") == ()
    assert len(runs_stamp(run.path.parent)) == 1
    runs, broken = list_runs(run.path.parent)
    assert list(runs["name"]) == ["r"] and broken.empty


def test_map_neighbours_ring_the_stored_neighbours_of_the_same_split():
    from dmlviz.views.data import SplitData

    table = np.arange(24).reshape(2, 12)
    data = SplitData("run", "test", np.zeros(2), neighbours=table, reference_split="test")
    assert data.map_neighbours(1) == list(range(12, 22))
    assert data.map_neighbours(None) is None and data.map_neighbours(5) is None
    data.reference_split = "gallery"  # the neighbours index another split
    assert data.map_neighbours(1) is None
