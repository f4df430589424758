"""One walk over a runs folder: which folders are runs, for `dmlviz runs`, the dashboard and studies."""

from fake_runs import make_run

from dmlviz.cli import main
from dmlviz.runs import find_runs, is_run, run_folders, study_folders
from dmlviz.views.data import list_runs, runs_stamp
from dmlviz.views.tuning import find_studies


def _tree(root):
    """A sweep run, and a tuning study with a search fold run and a confirmation fold run."""
    make_run(root / "sweep" / "rll-noise0-seed0", splits=())
    study = root / "tune-digits-rll"
    study.mkdir(parents=True)
    (study / "study.db").write_bytes(b"")
    make_run(study / "trials" / "trial-000" / "fold-0", splits=())
    make_run(study / "confirm" / "trial-000" / "fold-0", splits=())
    return study


def test_confirmation_runs_of_a_study_are_not_runs_of_the_folder(tmp_path, capsys):
    study = _tree(tmp_path)
    assert [r.path.name for r in find_runs(tmp_path)] == ["rll-noise0-seed0"]
    assert run_folders(tmp_path) == [tmp_path / "sweep" / "rll-noise0-seed0"]
    runs, broken = list_runs(tmp_path)  # the dashboard's table
    assert len(runs) == 1 and broken.empty
    assert len(runs_stamp(tmp_path)) == 1
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "confirm" not in out and "fold-0" not in out and "rll-noise0-seed0" in out
    assert study_folders(tmp_path) == find_studies(tmp_path) == [study]


def test_is_run_is_one_rule(tmp_path):
    assert not is_run(tmp_path)
    run = make_run(tmp_path / "run", splits=())
    assert is_run(run.path) and is_run(run.path, ["config.json"])
    assert not is_run(run.path, ["notes.txt"])
    # a study's folders are runs when asked for directly
    study = _tree(tmp_path / "more")
    assert [p.name for p in run_folders(study / "confirm")] == ["fold-0"]
