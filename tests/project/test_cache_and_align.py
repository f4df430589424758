"""project_run's cache (reuse, recompute on change), Procrustes alignment, `dmlviz project`."""

import numpy as np
import pytest

from dmlviz.cli import main
from dmlviz.project import align_maps, align_runs, project_run
from dmlviz.runs import RunError

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 6, "loss": "rll"}


def test_maps_are_cached_and_recomputed_when_params_change(tmp_path, make_run):
    run = make_run(tmp_path / "run", config=CONFIG)
    first = project_run(run, n_neighbors=5)
    assert first == {
        "train_umap": "skipped: no embeddings",
        "train_pca": "skipped: no embeddings",
        "test_umap": "computed",
        "test_pca": "computed",
    }
    coords, meta = run.projection("test", "umap")
    assert coords.shape == (30, 2)
    assert meta["params"]["n_neighbors"] == 5 and meta["params"]["seed"] == 0
    assert 0.5 < meta["trustworthiness"] <= 1 and meta["trustworthiness_points"] == 30

    again = project_run(run, splits=("test",), n_neighbors=5)
    assert again == {"test_umap": "cached", "test_pca": "cached"}
    assert project_run(run, splits=("test",), methods=("umap",), n_neighbors=6) == {
        "test_umap": "computed"
    }
    assert run.projection("test", "umap")[1]["params"]["n_neighbors"] == 6
    assert project_run(run, splits=("test",), methods=("pca",), force=True) == {
        "test_pca": "computed"
    }

    # new embeddings (e.g. after more training) invalidate the maps
    x, labels = run.embeddings("test")
    run.save_embeddings("test", x + 1, labels)
    assert project_run(run, splits=("test",), methods=("pca",)) == {"test_pca": "computed"}


def test_project_run_errors(tmp_path, make_run):
    run = make_run(tmp_path / "run", config=CONFIG)
    with pytest.raises(ValueError, match="tsne"):
        project_run(run, methods=("tsne",))
    with pytest.raises(RunError, match="dmlviz embed"):
        project_run(run, splits=("train",))


def test_procrustes_recovers_a_rotated_scaled_shifted_map():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((40, 2))
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reflect = np.array([[1.0, 0.0], [0.0, -1.0]])
    moved = 2.5 * reference @ rotation @ reflect + [3.0, -7.0]
    np.testing.assert_allclose(align_maps(reference, moved), reference, atol=1e-5)
    # fitting on a subset still maps every row
    noisy = moved.copy()
    noisy[:5] += 50
    shared = np.arange(5, 40)
    np.testing.assert_allclose(align_maps(reference, noisy, shared)[5:], reference[5:], atol=1e-5)
    with pytest.raises(ValueError, match="same"):
        align_maps(reference, moved[:10])


def test_align_runs_on_the_same_samples(tmp_path, make_run):
    a = make_run(tmp_path / "a", config=CONFIG)
    b = make_run(tmp_path / "b", config=CONFIG)
    for run in (a, b):
        project_run(run, splits=("test",), methods=("pca",))
    coords_a, _ = a.projection("test", "pca")
    b.save_projection("test", "pca", -coords_a[:, ::-1] * 3 + 1, {"params": {}})
    aligned = align_runs([a, b], split="test", method="pca")
    np.testing.assert_allclose(aligned[1], coords_a, atol=1e-4)
    other = make_run(tmp_path / "c", config={**CONFIG, "dataset": "omniglot"})
    project_run(other, splits=("test",), methods=("pca",))
    with pytest.raises(ValueError, match="different test samples"):
        align_runs([a, other], split="test", method="pca")
    unmapped = make_run(tmp_path / "d", config=CONFIG)
    assert align_runs([a, unmapped], split="test", method="pca")[1] is None


def test_cli_project(tmp_path, capsys, make_run):
    run = make_run(tmp_path / "run", config=CONFIG)
    assert main(["project", str(run.path), "--methods", "pca", "--splits", "test"]) == 0
    assert capsys.readouterr().out.strip() == "tiny: test_pca computed"
    assert main(["project", str(run.path), "--methods", "pca", "--splits", "test"]) == 0
    assert "test_pca cached" in capsys.readouterr().out
    assert main(["project", str(run.path), "--methods", "pca,tsne"]) == 2
    assert "--methods" in capsys.readouterr().err
