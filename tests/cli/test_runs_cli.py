"""`dmlviz runs` (``dmlviz.cli.runs``): rows named by folder, and broken runs told the command
that repairs them."""

from __future__ import annotations

import shutil

from dmlviz.cli import main

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 8, "loss": "rll"}


def test_copies_of_a_run_are_told_apart_by_their_folder(tmp_path, capsys, make_run):
    make_run(tmp_path / "sweep" / "a", splits=(), config=CONFIG)
    shutil.copytree(tmp_path / "sweep" / "a", tmp_path / "sweep" / "b")
    assert main(["runs", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:3]
    assert [row.split()[0] for row in rows] == ["sweep/a", "sweep/b"]


def test_a_broken_run_is_told_the_command_that_recomputes_it(tmp_path, capsys, make_run):
    run = make_run(tmp_path / "my run", splits=(), config=CONFIG)
    (run.path / "eval").mkdir()
    (run.path / "eval" / "test_metrics.json").write_text("{oops")
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 broken run(s)" in out
    assert f"recompute it with `dmlviz evaluate '{run.path}'`" in out


def test_embed_tells_an_imported_run_to_import_again(tmp_path, capsys):
    import numpy as np

    from dmlviz.runs import import_embeddings

    np.save(tmp_path / "e.npy", np.random.default_rng(0).standard_normal((8, 4)))
    (tmp_path / "l.txt").write_text("a\nb\n" * 4)
    run = import_embeddings(tmp_path / "run", tmp_path / "e.npy", tmp_path / "l.txt")
    assert main(["embed", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "an imported run has no model to embed with: import the embeddings again" in err
    assert "dataset='imported' is invalid" not in err
