"""`dmlviz project --force` replaces a corrupt cached map; without it the error names --force."""

import pytest

from dmlviz.cli import main
from dmlviz.runs import RunError

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 6, "loss": "rll"}


@pytest.mark.parametrize("broken", ["test_pca.npy", "test_pca.json"])
def test_force_recomputes_a_corrupt_map(tmp_path, capsys, broken, make_run):
    run = make_run(tmp_path / "run", n=20, classes=4, config=CONFIG)
    assert main(["project", str(run.path), "--methods", "pca", "--splits", "test"]) == 0
    (run.path / "projections" / broken).write_bytes(b"\x93NUMPY torn")
    assert main(["project", str(run.path), "--methods", "pca", "--splits", "test"]) == 2
    assert "corrupt" in capsys.readouterr().err
    if broken.endswith(".npy"):
        with pytest.raises(RunError, match="dmlviz project --force"):
            run.projection("test", "pca")
    assert main(["project", str(run.path), "--methods", "pca", "--splits", "test", "--force"]) == 0
    assert "test_pca computed" in capsys.readouterr().out
    coords, meta = run.projection("test", "pca")
    assert coords.shape == (20, 2) and meta["method"] == "pca"
