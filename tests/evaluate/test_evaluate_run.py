"""evaluate_run and `dmlviz evaluate` on tiny run directories built in the test (no training)."""

import json

import pytest
from fake_runs import blobs

from dmlviz.cli import main
from dmlviz.evaluate import evaluate_run
from dmlviz.runs import RunError

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 8, "loss": "rll"}


# 40 train points in 4 blobs, three of their labels flipped; 18 test points in 3 other blobs.
SPLITS = {"train": blobs(40, 4, 8, seed=0), "test": blobs(18, 3, 8, seed=1)}
FLIPPED = [0, 15, 25]


def test_evaluate_run_writes_eval(tmp_path, make_run):
    run = make_run(tmp_path / "run", embeddings=SPLITS, flipped=FLIPPED, config=CONFIG)
    results = evaluate_run(run, k=5, top_k=4)
    assert set(results) == {"test", "train", "consistency"}
    metrics = run.eval_metrics("test")
    assert metrics["map@r"] == pytest.approx(results["test"]["map@r"])
    assert metrics["query_split"] == metrics["reference_split"] == "test"
    assert 0 <= metrics["nmi"] <= 1 and metrics["num_queries"] == 18
    assert len(run.per_query("test")) == 18 and len(run.per_query("train")) == 40
    neighbours, sims = run.neighbours("test")
    assert neighbours.shape == sims.shape == (18, 4)
    summary, per_sample = run.consistency()
    assert summary["k"] == 5 and summary["n_flipped"] == 3 and summary["noise_kind"] == "symmetric"
    assert summary["detector_auroc"] > 0.9  # the three flipped labels sit in clean blobs
    assert per_sample["flipped"].sum() == 3
    json.loads((run.path / "eval" / "consistency.json").read_text())  # strict JSON


def test_runs_without_labels_file_get_zero_noise(tmp_path, make_run):
    run = make_run(tmp_path / "run", embeddings=SPLITS, config=CONFIG)
    summary = evaluate_run(run)["consistency"]
    assert summary["n_flipped"] == 0 and summary["detector_auroc"] is None
    assert run.consistency() is not None


def test_inshop_style_query_against_gallery(tmp_path, make_run):
    gallery, gallery_labels = blobs(20, 4, 8, seed=2)
    query, query_labels = blobs(10, 5, 8, seed=2)  # label 4 has no gallery image: a lone query
    splits = {"query": (query, query_labels), "gallery": (gallery, gallery_labels)}
    run = make_run(tmp_path / "run", embeddings=splits, config={**CONFIG, "dataset": "inshop"})
    results = evaluate_run(run, top_k=3)
    assert set(results) == {"test", "consistency"} and results["consistency"] is None
    metrics = run.eval_metrics("test")
    assert (metrics["query_split"], metrics["reference_split"]) == ("query", "gallery")
    assert metrics["num_queries"] == 8 and metrics["num_lone_queries"] == 2
    neighbours, _ = run.neighbours("test")
    assert neighbours.shape == (10, 3) and neighbours.max() < len(gallery)


def test_no_embeddings_is_an_error(tmp_path, make_run):
    run = make_run(tmp_path / "run", splits=(), config=CONFIG)
    with pytest.raises(RunError, match="dmlviz embed"):
        evaluate_run(run)


def test_labels_that_do_not_match_the_embeddings(tmp_path, make_run):
    run = make_run(tmp_path / "run", embeddings=SPLITS, flipped=FLIPPED, config=CONFIG)
    run.save_embeddings("train", *blobs(12, 4, 8, seed=0))
    with pytest.raises(RunError, match="re-embed"):
        evaluate_run(run)


def test_cli_evaluate(tmp_path, make_run, capsys):
    run = make_run(tmp_path / "run", embeddings=SPLITS, flipped=FLIPPED, config=CONFIG)
    assert main(["evaluate", str(run.path), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: test MAP@R") and "AUROC" in out
    assert "NMI" in out and "[kmeans 20 iterations (PML)]" in out
    assert run.consistency()[0]["k"] == 3


def test_cli_evaluate_clustering_and_approximate(tmp_path, make_run, capsys):
    run = make_run(tmp_path / "run", embeddings=SPLITS, flipped=FLIPPED, config=CONFIG)
    assert main(["evaluate", str(run.path), "--clustering", "off", "--approximate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: test (approximate search) MAP@R") and "NMI n/a [off]" in out
    metrics = run.eval_metrics("test")
    assert metrics["exact"] is False and metrics["nmi"] is None and metrics["nmi_method"] == "off"


def test_cli_evaluate_errors(tmp_path, make_run, capsys):
    run = make_run(tmp_path / "run", embeddings=SPLITS, flipped=FLIPPED, config=CONFIG)
    assert main(["evaluate", str(run.path), "--k", "0"]) == 2
    assert "--k" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse's choices
        main(["evaluate", str(run.path), "--clustering", "fast"])
    assert stop.value.code == 2
    assert "--clustering: invalid choice: 'fast'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="clustering='fast' is invalid"):
        evaluate_run(run, clustering="fast")
