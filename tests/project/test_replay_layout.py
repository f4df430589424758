"""The replay's aligned layout: one frame per snapshot, cached, faithful, in one frame of reference."""

import numpy as np
import pytest

from dmlviz.evaluate import evaluate_replay, replay_summary, snapshot_metrics
from dmlviz.project import aligned_layouts, project_replay, project_run
from dmlviz.project.replay import square_ranges

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 6, "loss": "rll"}
# The replay: 30 train-probe images of 3 classes, every 5th told the next class, drifting
# snapshot by snapshot from their true class towards the one they were told.
FLIPPED = range(0, 30, 5)


def test_the_layout_is_cached_with_one_faithful_frame_per_snapshot(tmp_path, make_run):
    run = make_run(tmp_path / "r", splits=(), flipped=FLIPPED, replay=(0, 1, 2), config=CONFIG)
    assert project_replay(run, n_neighbors=5) == "computed"
    epochs, coords, meta = run.replay_layout("umap")
    assert epochs.tolist() == [0, 1, 2] and coords.shape == (3, 30, 2)
    assert len(meta["trustworthiness"]) == 3 and min(meta["trustworthiness"]) > 0.7
    assert project_replay(run, n_neighbors=5) == "cached"
    run.save_replay_snapshot(3, *run.replay_snapshot(2))  # a new snapshot: recomputed
    _, test_probe = run.replay_snapshot(0)
    run.save_embeddings("test", test_probe, run.replay_probe()["test_labels"])
    assert project_run(run, splits=("test",), methods=("umap",), n_neighbors=5) == {
        "test_umap": "computed",
        "replay_umap": "computed",
    }
    assert run.replay_layout("umap")[0].tolist() == [0, 1, 2, 3]
    assert (
        project_replay(make_run(tmp_path / "none", splits=(), config=CONFIG))
        == "skipped: no replay snapshots"
    )


def test_procrustes_frames_share_one_frame_of_reference():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 10)
    base = rng.standard_normal((3, 6))[labels] * 4 + rng.standard_normal((30, 6))
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    frames = [base, base @ rotation]  # the same geometry, turned: the same map
    coords = aligned_layouts(frames, n_neighbors=5)
    spread = np.ptp(coords[1], axis=0).mean()
    assert np.abs(coords[0] - coords[1]).mean() < 0.2 * spread
    with pytest.raises(ValueError, match="alignment"):
        aligned_layouts(frames, alignment="tsne")


def test_a_warm_start_is_turned_so_umaps_per_axis_stretch_is_a_uniform_scale():
    """UMAP stretches each axis of a starting layout to [0, 10]: a wide map would be squashed."""
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((40, 2)) * [8.0, 1.0] + [3.0, -2.0]
    turned = square_ranges(wide)
    assert np.ptp(turned, axis=0) == pytest.approx([np.ptp(turned[:, 0])] * 2, rel=1e-9)
    rotation = np.linalg.lstsq(wide, turned, rcond=None)[0]  # a turn: distances all kept
    assert rotation @ rotation.T == pytest.approx(np.eye(2), abs=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_snapshot_metrics_see_the_flipped_images_move(tmp_path, make_run):
    run = make_run(tmp_path / "r", splits=(), flipped=FLIPPED, replay=(0, 1, 2), config=CONFIG)
    frame = evaluate_replay(run, k=3)
    assert frame["epoch"].tolist() == [0, 1, 2]
    assert frame["memorised"].tolist() == [0.0, frame["memorised"][1], 1.0]
    assert frame["detector_auroc"].iloc[0] > 0.9 > frame["detector_auroc"].iloc[-1]
    assert (frame["map@r"] > 0.9).all()
    assert run.replay_metrics().equals(frame)
    assert replay_summary(frame) == {"auroc_peak_epoch": 0, "memorised_end": 1.0}
    row = run.summary()
    assert (row["auroc_peak_epoch"], row["memorised_end"]) == (0, 1.0)
    assert replay_summary(None) == {"auroc_peak_epoch": None, "memorised_end": None}


def test_memorised_is_the_share_of_flips_whose_neighbours_carry_the_wrong_label():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((40, 5))
    clean = rng.integers(0, 4, 40)
    flipped = rng.random(40) < 0.3
    observed = np.where(flipped, (clean + 1) % 4, clean)
    probe = {"observed": observed, "clean": clean, "flipped": flipped, "test_labels": clean}
    row = snapshot_metrics(train, train, probe, k=5)
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :5]
    agree = (observed[neighbours] == observed[:, None]).mean(axis=1)
    assert row["memorised"] == pytest.approx((agree[flipped] > 0.5).mean())
    assert row["consistency_flipped"] == pytest.approx(agree[flipped].mean())
