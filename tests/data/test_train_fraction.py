"""Withheld training data: ``train_fraction`` keeps a seeded, nested share of each train class."""

import numpy as np
import pytest

from dmlviz.data import load_dataset
from dmlviz.data.listing import kept_fraction_mask
from dmlviz.train import ConfigError, default_config, train, validate_config

KEYS = np.repeat(np.arange(5), [40, 20, 9, 3, 1])  # classes of 40, 20, 9, 3 and 1 images


def test_a_smaller_fraction_lies_inside_a_larger_one():
    for seed in range(3):
        half = kept_fraction_mask(KEYS, 0.5, seed, minimum=4)
        quarter = kept_fraction_mask(KEYS, 0.25, seed, minimum=4)
        assert not (quarter & ~half).any()
        assert kept_fraction_mask(KEYS, 1.0, seed, minimum=4).all()
    assert not np.array_equal(
        kept_fraction_mask(KEYS, 0.5, 0, 4), kept_fraction_mask(KEYS, 0.5, 1, 4)
    )


def test_each_class_keeps_ceil_of_its_share_and_at_least_the_minimum():
    kept = kept_fraction_mask(KEYS, 0.25, seed=0, minimum=4)
    counts = np.bincount(KEYS[kept], minlength=5)
    # ceil(0.25 * n): 10 and 5; at least 4 of the 9; all of a class of 3 or 1
    assert counts.tolist() == [10, 5, 4, 3, 1]


def test_a_fraction_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="train_fraction"):
        kept_fraction_mask(KEYS, 0.0, 0, 1)
    with pytest.raises(ConfigError, match="train_fraction"):
        validate_config({**default_config("digits", "contrastive"), "train_fraction": 1.5})


def test_only_the_train_split_is_thinned():
    full = load_dataset("digits", split="train", val_fraction=None)
    half = load_dataset("digits", split="train", train_fraction=0.5, min_per_class=4)
    assert len(half) == sum(-(-n // 2) for n in np.bincount(full.labels))
    assert set(half.sample_ids) < set(full.sample_ids) and half.num_classes == full.num_classes
    test = load_dataset("digits", split="test", train_fraction=0.5)
    assert len(test) == len(load_dataset("digits", split="test"))


def test_a_digits_run_trains_on_half_of_each_class(tmp_path):
    config = {"dataset": "digits", "loss": "contrastive", "epochs": 1, "batches_per_epoch": 2,
              "eval_every": 0, "num_threads": 1, "train_fraction": 0.5}  # fmt: skip
    run = train(config, tmp_path / "half", progress=False)
    assert run.config["train_fraction"] == 0.5
    assert len(run.labels().observed) == len(run.dataset("train"))
    assert len(run.dataset("train")) < len(load_dataset("digits", split="train")) * 0.6
    assert len(run.dataset("test")) == len(load_dataset("digits", split="test"))


def test_the_command_line_trains_on_a_fraction_and_runs_lists_it(tmp_path, capsys):
    from dmlviz.cli import main

    argv = ["train", "--dataset", "digits", "--loss", "contrastive", "--train-fraction", "0.5",
            "--epochs", "1", "--batches-per-epoch", "2", "--num-threads", "1", "--no-progress",
            "--no-eval", "--out", str(tmp_path / "half")]  # fmt: skip
    assert main(argv) == 0
    assert main(["runs", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()[-2:]
    assert "train data" in header and " 0.5 " in row
