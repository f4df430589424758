"""`dmlviz runs` (``dmlviz.cli.runs``): rows named by folder, and broken runs told the command
that repairs them."""

from __future__ import annotations

import shutil

from dmlviz.cli import main
from dmlviz.runs import Run

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 8, "loss": "rll"}


def test_copies_of_a_run_are_told_apart_by_their_folder(tmp_path, capsys):
    Run.create(tmp_path / "sweep" / "a", CONFIG)
    shutil.copytree(tmp_path / "sweep" / "a", tmp_path / "sweep" / "b")
    assert main(["runs", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:3]
    assert [row.split()[0] for row in rows] == ["sweep/a", "sweep/b"]


def test_a_broken_run_is_told_the_command_that_recomputes_it(tmp_path, capsys):
    run = Run.create(tmp_path / "my run", CONFIG)
    (run.path / "eval").mkdir()
    (run.path / "eval" / "test_metrics.json").write_text("{oops")
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 broken run(s)" in out
    assert f"recompute it with `dmlviz evaluate '{run.path}'`" in out
