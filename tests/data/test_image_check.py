"""The up-front image check decodes: a file cut short is skipped before training, never met mid-run."""

import numpy as np
import pytest
from dataset_trees import write_image

from dmlviz.data import load_dataset
from dmlviz.train import default_config, finish_run, train


def _classes(root, counts, suffix=".png", size=(6, 6)):
    for c, count in enumerate(counts):
        for k in range(count):
            write_image(root / f"c{c}" / f"{k:03d}{suffix}", seed=10 * c + k, size=size)


def _cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_truncated_image_is_skipped_like_an_unreadable_one(tmp_path, suffix):
    _classes(tmp_path, [101, 101, 101, 101], suffix, size=(40, 40))
    first = load_dataset("folder", root=tmp_path).class_names[0]
    _cut(tmp_path / first / f"003{suffix}")  # its header is intact: PIL opens it
    with pytest.warns(RuntimeWarning, match=rf"skipping 1 unreadable .*{first}/003{suffix}"):
        ds = load_dataset("folder", root=tmp_path)
    assert len(ds) == 201 and f"{first}/003{suffix}" not in ds.sample_ids
    ds[0]  # the rest still load


def test_a_file_changed_after_its_check_is_checked_again(tmp_path):
    _classes(tmp_path, [101, 101, 101, 101])
    first = load_dataset("folder", root=tmp_path).class_names[0]
    _cut(tmp_path / first / "007.png")  # new size and time: the remembered check no longer holds
    with pytest.warns(RuntimeWarning, match=rf"{first}/007.png"):
        load_dataset("folder", root=tmp_path)


def test_a_truncated_test_image_does_not_kill_the_run(tmp_path):
    root = tmp_path / "photos"
    _classes(root, [101, 101, 101, 101], size=(12, 12))
    test_class = load_dataset("folder", root=root, split="test").class_names[0]
    _cut(root / test_class / "050.png")
    config = default_config("folder", "contrastive") | {
        "dataset_root": str(root),
        "model": "mlp",
        "pretrained": False,
        "image_size": 8,
        "augment": False,
        "num_workers": 0,
        "epochs": 1,
        "batch_size": 8,
        "m_per_class": 4,
        "batches_per_epoch": 2,
        "embedding_dim": 8,
        "eval_every": 1,
        "tensorboard": False,
    }
    with pytest.warns(RuntimeWarning, match=rf"{test_class}/050.png"):
        run = train(config, tmp_path / "run", progress=False)
        metrics = finish_run(run)
    assert run.status()["state"] == "finished"
    assert np.isfinite(metrics["map@r"])
