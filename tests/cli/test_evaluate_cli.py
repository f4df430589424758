"""`dmlviz evaluate` and `dmlviz project` (``dmlviz.cli.evaluate``) under bad input: one line that
names the option or the missing file and the command that fixes it, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from dmlviz.cli import main
from dmlviz.cli.evaluate import lone_note
from dmlviz.jobs.lock import TrainingLock
from dmlviz.runs import Run, import_embeddings

N, DIM, CLASSES = 24, 8, 4


@pytest.fixture
def run(tmp_path, make_run) -> Run:
    """An imported run with test and train embeddings (no training)."""
    return make_run(tmp_path / "run", splits=("test", "train"), n=N, classes=CLASSES, dim=DIM,
                    imported=True)  # fmt: skip


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_k_must_be_below_the_number_of_train_samples(run, capsys):
    assert main(["evaluate", str(run.path), "--k", "100000"]) == 2
    err = _error(capsys)
    assert "argument --k: 100000 neighbours is too many" in err
    assert f"train split has {N} samples: give --k from 1 to {N - 1}" in err
    assert not (run.path / "eval").exists()
    assert main(["evaluate", str(run.path), "--k", str(N - 1)]) == 0


def test_an_unknown_split_is_named_with_the_valid_ones(run, capsys):
    assert main(["project", str(run.path), "--splits", "foo", "--methods", "pca"]) == 2
    err = _error(capsys)
    assert "argument --splits: unknown split(s) foo; choose from train, test, val, query" in err


@pytest.mark.parametrize("command", ["evaluate", "project"])
def test_a_run_being_trained_is_refused(run, capsys, command):
    lock = TrainingLock(run.path)
    lock.acquire()
    try:
        assert main([command, str(run.path)]) == 2
    finally:
        lock.release()
    err = _error(capsys)
    assert "is being trained right now (pid" in err and "train.lock" in err
    assert not (run.path / "eval").exists() and not (run.path / "projections").exists()


@pytest.mark.parametrize("command", ["evaluate", "project"])
def test_a_sweep_folder_points_at_its_runs(run, capsys, command):
    assert main([command, str(run.path.parent)]) == 2
    err = _error(capsys)
    assert "is not a run but a folder of 1 run(s) (run)" in err
    assert f"dmlviz runs {run.path.parent}" in err


def test_a_deleted_split_is_named_and_nothing_is_rescored(run, capsys):
    assert main(["evaluate", str(run.path)]) == 0
    before = (run.path / "eval" / "train_metrics.json").stat().st_mtime_ns
    (run.path / "embeddings" / "test.npz").unlink()
    assert main(["evaluate", str(run.path)]) == 2
    err = _error(capsys)
    assert "has no embeddings of its test split (embeddings/test.npz)" in err
    assert "an imported run has no model to embed with: import the embeddings again" in err
    assert (run.path / "eval" / "train_metrics.json").stat().st_mtime_ns == before


def test_lone_queries_are_explained():
    assert lone_note({"num_lone_queries": 0, "num_queries": 5}) == ""
    alone = lone_note({"num_lone_queries": 24, "num_queries": 0, "reference_split": "test"})
    assert "MAP@R and R@1 n/a: all 24 queries have no other sample of their class" in alone
    some = lone_note({"num_lone_queries": 1, "num_queries": 2, "reference_split": "gallery"})
    assert "1 of 3 queries have no sample of their class in the gallery" in some


def test_evaluate_says_why_map_at_r_is_not_available(tmp_path, capsys):
    np.save(tmp_path / "e.npy", np.random.default_rng(0).standard_normal((6, 4)))
    (tmp_path / "l.txt").write_text("".join(f"c{i}\n" for i in range(6)))
    with pytest.warns(UserWarning, match="MAP@R and R@1 will be n/a"):
        run = import_embeddings(tmp_path / "r", tmp_path / "e.npy", tmp_path / "l.txt")
    capsys.readouterr()
    assert main(["evaluate", str(run.path), "--clustering", "off"]) == 0
    assert "MAP@R n/a" in (out := capsys.readouterr().out) and "all 6 queries have no other" in out
