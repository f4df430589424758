"""Training replay: which samples the probe holds, when snapshots are taken, and that a crash
loses at most the epoch being trained."""

import numpy as np
import pytest

from dmlviz.runs import Run
from dmlviz.train import train
from dmlviz.train.replay import PROBE_TRAIN, choose_probe

TINY = {"dataset": "digits", "epochs": 3, "batches_per_epoch": 4, "eval_every": 0, "num_threads": 1,
        "loss": "contextual", "noise_rate": 0.4}  # fmt: skip


def test_the_probe_holds_every_flipped_image_and_is_capped():
    flipped = np.zeros(10_000, bool)
    flipped[::20] = True  # 500 flips: all fit
    train_index, test_index = choose_probe(flipped, n_test=300, seed=0)
    assert len(train_index) == PROBE_TRAIN and flipped[train_index].sum() == 500
    assert np.all(np.diff(train_index) > 0) and test_index.tolist() == list(range(300))
    many = np.ones(10_000, bool)
    many[:4000] = False  # 6000 flips: half the probe
    train_index, _ = choose_probe(many, n_test=0, seed=0)
    assert len(train_index) == PROBE_TRAIN and many[train_index].sum() == PROBE_TRAIN // 2
    small = np.array([True, False, False])
    assert choose_probe(small, 2, seed=0)[0].tolist() == [0, 1, 2]


@pytest.mark.parametrize(("every", "epochs"), [(1, [0, 1, 2, 3]), (2, [0, 2, 3]), (0, [])])
def test_snapshots_every_replay_every_epochs_in_float16(tmp_path, every, epochs):
    run = train({**TINY, "replay_every": every}, tmp_path / "r", progress=False)
    assert run.replay_epochs() == epochs
    if not every:
        assert run.replay_probe() is None and not (run.path / "replay").exists()
        return
    probe = run.replay_probe()
    noisy = run.labels()
    assert probe["flipped"].sum() == noisy.flipped.sum() > 0  # digits: the whole train split
    np.testing.assert_array_equal(probe["observed"], noisy.observed[probe["train_index"]])
    np.testing.assert_array_equal(probe["test_labels"], run.dataset("test").labels)
    with np.load(run.path / "replay/epoch_0003.npz") as stored:
        assert stored["train"].dtype == np.float16
        assert stored["train"].shape == (len(probe["train_index"]), run.config["embedding_dim"])
    train_probe, test_probe = run.replay_snapshot(3)
    assert test_probe.shape[0] == len(probe["test_index"])
    assert np.allclose(np.linalg.norm(train_probe, axis=1), 1.0, atol=1e-2)
    recorded = run.metrics().set_index("epoch")["replay_seconds"]
    assert recorded.notna().tolist() == [epoch in epochs for epoch in (1, 2, 3)]


def test_a_crash_loses_at_most_the_current_epoch_of_replay(tmp_path):
    config = {**TINY, "replay_every": 1}
    straight = train(config, tmp_path / "straight", progress=False)

    def crash(record):
        if record["epoch"] == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        train(config, tmp_path / "crashed", progress=False, on_epoch=crash)
    crashed = Run.load(tmp_path / "crashed")
    assert crashed.replay_epochs() == [0, 1, 2]
    (crashed.path / "replay/epoch_0003.npz").write_bytes(b"a snapshot of an unsaved epoch")
    resumed = train(None, crashed.path, resume=True, progress=False)
    assert resumed.replay_epochs() == [0, 1, 2, 3]
    for epoch in resumed.replay_epochs():
        ours, theirs = resumed.replay_snapshot(epoch), straight.replay_snapshot(epoch)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
