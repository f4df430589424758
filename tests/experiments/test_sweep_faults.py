"""`dmlviz sweep` under bad input: a missing or broken --spec and an --out it cannot make are one
line each, naming the file, with no folder left behind."""

from dmlviz.cli import main


def test_a_missing_spec_is_named(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", "--spec", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"the sweep spec {tmp_path / 'missing.json'} does not exist" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_a_spec_that_is_not_json_is_named_with_the_error(tmp_path, capsys):
    spec, out = tmp_path / "bad.json", tmp_path / "out"
    spec.write_text('{"dataset": "digits",')
    assert main(["sweep", "--spec", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"the sweep spec {spec} is not valid JSON (Expecting property name" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_an_out_that_cannot_be_made_is_one_line(capsys):
    command = ["sweep", "--dataset", "digits", "--losses", "rll", "--epochs", "1", "--no-umap"]
    assert main([*command, "--out", "/proc/dmlviz-x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dmlviz sweep: error: cannot create --out /proc/dmlviz-x: ")
    assert len(err.splitlines()) == 1
