"""The Replay page's plain functions: which snapshot an epoch shows, the trails, the curves."""

import numpy as np

from dmlviz.views.replay import all_epochs, frame_at, load_replay, replay_curves, replay_map

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 4, "loss": "rll"}


# A run whose 12 train-probe images (2 classes, every 4th flipped) have replay snapshots.
PROBE = dict(splits=(), n=12, classes=2, dim=4, flipped=range(0, 12, 4), config=CONFIG)


def test_an_epoch_shows_its_last_snapshot():
    assert [frame_at([0, 2, 4], e) for e in (0, 1, 2, 3, 4, 9)] == [0, 0, 1, 1, 2, 2]


def test_load_replay_computes_metrics_and_says_the_map_is_missing(tmp_path, make_run):
    run = make_run(tmp_path / "r", replay=(0, 2, 4), **PROBE)
    data = load_replay(run)
    assert data.metrics["epoch"].tolist() == [0, 2, 4] and run.replay_metrics() is not None
    assert data.coords is None and "dmlviz project" in data.problems[0]
    assert "no aligned map" in replay_map(data, 2).layout.annotations[0].text
    assert load_replay(make_run(tmp_path / "none", splits=(), config=CONFIG)) is None
    other = load_replay(make_run(tmp_path / "o", replay=(0, 3), **PROBE))
    assert all_epochs([data, other]) == [0, 2, 3, 4]


def test_trails_run_through_the_flipped_images_past_places(tmp_path, make_run):
    run = make_run(tmp_path / "r", replay=(0, 2, 4), **PROBE)
    data = load_replay(run)
    data.layout_epochs = [0, 2, 4]
    data.coords = np.arange(3 * 12 * 2, dtype=np.float32).reshape(3, 12, 2)
    figure = replay_map(data, epoch=4, trail=1)
    trail = next(t for t in figure.data if t.name == "trail")
    flips = np.flatnonzero(data.probe["flipped"])
    xs = np.asarray(trail.x, dtype=float).reshape(len(flips), 3)  # from, to, gap
    np.testing.assert_array_equal(xs[:, 0], data.coords[1, flips, 0])
    np.testing.assert_array_equal(xs[:, 1], data.coords[2, flips, 0])
    assert np.isnan(xs[:, 2]).all()
    points = next(t for t in figure.data if t.name == "flipped label")
    np.testing.assert_array_equal(points.x, data.coords[2, flips, 0])
    curves = replay_curves([("a", "rll", data), ("b", "rll", data)], epoch=2)
    colours = {t.line.color for t in curves.data}
    assert len(colours) == 2  # two runs of one loss still get two colours
    assert len(curves.layout.shapes) == 4  # the epoch marked in each panel
