"""``dmlviz compare``: text, --json and refusal of runs of different test splits."""

from __future__ import annotations

import json

from fake_runs import per_query_table, save_per_query

from dmlviz.cli import main

CONFIG = {"dataset": "digits", "model": "mlp", "loss": "rll"}


def evaluated_run(path, make_run, shift: float = 0.0, seed: int = 0, classes: int = 30):
    """A run evaluated with ``per_query_table(shift, seed, classes)`` (6 queries a class)."""
    return save_per_query(
        make_run(path, splits=(), config=CONFIG), per_query_table(shift, seed, classes)
    )


def test_compare_prints_each_difference_and_what_explains_it(tmp_path, capsys, make_run):
    a = evaluated_run(tmp_path / "a", make_run, seed=1)
    b = evaluated_run(tmp_path / "b", make_run, shift=0.1, seed=2)
    assert main(["compare", str(a.path), str(b.path), "--resamples", "500"]) == 0
    out = capsys.readouterr().out
    assert "A = a, B = b: 180 test queries in 30 classes, 500 class resamples" in out
    assert "MAP@R B - A: +0.1" in out and "B is better: the interval excludes 0" in out
    assert "Classes that explain most of the MAP@R difference:" in out
    assert out.count("  query ") == 5
    assert "not the training's: two seeds of the same settings can differ by more" in out


def test_compare_says_when_a_difference_is_within_noise(tmp_path, capsys, make_run):
    a = evaluated_run(tmp_path / "a", make_run, seed=1)
    b = evaluated_run(tmp_path / "b", make_run, seed=2)
    assert main(["compare", str(a.path), str(b.path), "--metric", "map@r"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if " B - A: " in line][0].endswith(
        "(within noise: the 95 % interval covers 0)"
    )


def test_compare_json(tmp_path, capsys, make_run):
    a = evaluated_run(tmp_path / "a", make_run, seed=1)
    b = evaluated_run(tmp_path / "b", make_run, shift=0.1, seed=2)
    args = ["compare", str(a.path), str(b.path), "--json", "--metric", "precision@1"]
    assert main([*args, "--metric", "map@r"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["metric"] for d in report["differences"]] == ["precision@1", "map@r"]
    assert report["explained"] == "precision@1"
    assert report["differences"][1]["within_noise"] is False
    assert report["differences"][1]["low"] > 0
    assert len(report["top_classes"]) == 5 and {"label", "contribution"} <= set(
        report["top_classes"][0]
    )


def test_compare_refuses_runs_of_other_test_splits(tmp_path, capsys, make_run):
    a = evaluated_run(tmp_path / "a", make_run)
    b = evaluated_run(tmp_path / "b", make_run, classes=20)
    assert main(["compare", str(a.path), str(b.path)]) == 2
    err = capsys.readouterr().err
    assert "dmlviz compare: error: a has 180 test queries, b has 120" in err
    assert "same test split" in err


def test_compare_tells_to_evaluate_a_run_first(tmp_path, capsys, make_run):
    a = evaluated_run(tmp_path / "a", make_run)
    b = make_run(tmp_path / "b", splits=(), config=CONFIG)
    assert main(["compare", str(a.path), str(b.path)]) == 2
    assert f"evaluate it first (`dmlviz evaluate {b.path}`)" in capsys.readouterr().err
