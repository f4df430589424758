"""An experiment folder's --out check: sweep and tune refuse a folder that holds something else
(a run, the other kind of experiment, other files, a file) before writing anything."""

import pytest

from dmlviz.cli import main
from dmlviz.experiments.folder import check_out, folder_kind

SWEEP = ["sweep", "--dataset", "digits", "--losses", "contextual", "--epochs", "1", "--no-umap"]
TUNE = ["tune", "--dataset", "digits", "--loss", "rll", "--budget", "1", "--folds", "1",
        "--epochs", "1"]  # fmt: skip


def _listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns)
                  for p in folder.rglob("*"))  # fmt: skip


@pytest.fixture
def holders(tmp_path):
    """One folder of each kind an --out may meet."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run/config.json").write_text("{}")
    (tmp_path / "study/trials").mkdir(parents=True)
    (tmp_path / "study/study.db").write_bytes(b"")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep/sweep.json").write_text("{}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "empty/.hidden").mkdir(parents=True)
    return tmp_path


def test_each_kind_of_folder_is_told_apart(holders):
    kinds = {name: folder_kind(holders / name) for name in
             ("run", "study", "sweep", "other", "file", "empty", "absent")}  # fmt: skip
    assert kinds == {"run": "run", "study": "study", "sweep": "sweep", "other": "other",
                     "file": "file", "empty": "empty", "absent": "absent"}  # fmt: skip
    check_out(holders / "sweep", "sweep")
    check_out(holders / "study", "study")
    check_out(holders / "empty", "study")
    with pytest.raises(ValueError, match=r"holds other files \(notes.txt\), not a sweep"):
        check_out(holders / "other", "sweep")


@pytest.mark.parametrize(
    ("command", "name", "said"),
    [
        (SWEEP, "run", "holds a run (dmlviz train), not a sweep: choose another --out"),
        (SWEEP, "study", "holds a tuning study (dmlviz tune), not a sweep"),
        (SWEEP, "file", "is a file, not a folder: choose a folder path for a sweep"),
        (TUNE, "run", "holds a run (dmlviz train), not a tuning study"),
        (TUNE, "sweep", "holds a sweep (sweep.json), not a tuning study"),
        (TUNE, "file", "is a file, not a folder"),
    ],
)
def test_sweep_and_tune_refuse_a_folder_that_holds_something_else(holders, capsys, command,
                                                                   name, said):  # fmt: skip
    before = _listing(holders)
    assert main([*command, "--out", str(holders / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert _listing(holders) == before  # nothing written, nothing touched


def test_the_noise_lab_refuses_an_experiment_name_whose_folder_holds_something_else(holders):
    from dmlviz.experiments.launcher import start_experiment
    from dmlviz.views.lab import folder_problems

    spec = {"dataset": "digits", "losses": ["rll"], "noise_rates": [0.0], "name": "run"}
    before = _listing(holders)
    assert folder_problems(holders, "run") == [
        f"{holders / 'run'} already holds a run (dmlviz train); choose another experiment name"
    ]
    assert "already holds other files (notes.txt)" in folder_problems(holders, "other")[0]
    assert folder_problems(holders, "empty") == []
    with pytest.raises(ValueError, match="already holds a run"):
        start_experiment(spec, holders)
    assert _listing(holders) == before
