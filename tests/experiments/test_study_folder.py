"""`dmlviz tune` into a folder holding another loss's study refuses it, touching nothing; bad
--storage values and an --out it cannot make are one line each, leaving no folder behind."""

import pytest

from dmlviz.cli import main

TUNE = ["tune", "--dataset", "digits", "--budget", "1", "--folds", "1", "--epochs", "1"]


def _listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                  for p in folder.rglob("*"))  # fmt: skip


def test_another_loss_into_an_existing_study_folder_is_refused(tmp_path, capsys):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = tmp_path / "study"
    out.mkdir()
    study = optuna.create_study(study_name="digits-rll", storage=f"sqlite:///{out / 'study.db'}")
    study.set_user_attr("dataset", "digits")
    study.set_user_attr("loss", "rll")
    before = _listing(out)
    assert main([*TUNE, "--loss", "contextual", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "holds the study of --loss rll on --dataset digits: choose another --out" in err
    assert "resume that study with --dataset digits --loss rll" in err
    assert _listing(out) == before


def test_a_fold_run_of_another_loss_names_the_study_too(tmp_path, capsys):
    out = tmp_path / "study"
    (out / "trials/trial-000/fold-0").mkdir(parents=True)
    (out / "trials/trial-000/fold-0/config.json").write_text(
        '{"dataset": "digits", "loss": "multisimilarity"}'
    )
    assert main([*TUNE, "--loss", "contextual", "--out", str(out)]) == 2
    assert "holds the study of --loss multisimilarity" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("storage", "said"),
    [
        ("journal:/proc/x.journal", "cannot open --storage journal:/proc/x.journal: "),
        ("postgresql://u:secret@127.0.0.1:1/db", "u:***@127.0.0.1:1/db: its database driver"),
        ("sqlite:////nonexistent/y.db", "unable to open database file; check the URL"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line_and_leaves_no_folder(tmp_path, capsys,
                                                                          storage, said):  # fmt: skip
    pytest.importorskip("optuna")
    if storage.startswith("postgresql"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("psycopg2 is installed here: the missing-driver case cannot happen")
    out = tmp_path / "out"
    assert main([*TUNE, "--loss", "rll", "--storage", storage, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1 and "secret" not in err, err
    assert not out.exists()


def test_an_out_that_cannot_be_made_is_one_line(capsys):
    assert main([*TUNE, "--loss", "rll", "--out", "/proc/dmlviz-x/y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dmlviz tune: error: cannot create --out /proc/dmlviz-x/y: ")
    assert "choose a folder you can write to" in err and len(err.splitlines()) == 1
