"""Options shared by sweep and tune: one name for the dataset root, a test root passed through, the
devices the lab's estimate and the tuning score run on, and the demo's one stated time."""

from pathlib import Path

import pytest
import torch
from dataset_trees import write_image

from dmlviz.cli import build_parser
from dmlviz.experiments import estimate, tune
from dmlviz.experiments.spec import DEMO_TIME, SweepSpec, plan, spec_problems


def _tree(root, classes, images=4):
    for c, name in enumerate(classes):
        for k in range(images):
            write_image(root / name / f"{k}.png", seed=100 * c + k, size=(10, 8))
    return root


@pytest.mark.parametrize("command", ["sweep", "tune"])
@pytest.mark.parametrize("flag", ["--dataset-root", "--root"])
def test_dataset_root_is_one_name_with_root_kept_as_an_alias(command, flag):
    needed = ["--loss", "rll"] if command == "tune" else []
    args = build_parser().parse_args(
        [
            command,
            "--dataset",
            "folder",
            *needed,
            flag,
            "data/",
            "--test-root",
            "other/",
            "--out",
            "x",
        ]  # fmt: skip
    )
    assert (args.dataset_root, args.test_root) == ("data/", "other/")


def test_a_sweep_passes_its_test_root_to_every_run(tmp_path):
    train, test = _tree(tmp_path / "train", "abcd"), _tree(tmp_path / "test", "xy")
    spec = SweepSpec("folder", ["rll"], [0.0, 0.2], dataset_root=str(train), test_root=str(test))
    assert spec_problems(spec) == []
    assert {c["test_root"] for c in plan(spec)} == {str(test)}
    missing = SweepSpec("folder", ["rll"], [0.0], dataset_root=str(train), test_root="nowhere")
    assert spec_problems(missing) == ["test_root='nowhere' is invalid: does not exist"]


def test_tune_counts_folds_and_train_classes_of_the_tree_that_trains(tmp_path):
    classes = [f"c{i}" for i in range(12)]
    train, test = _tree(tmp_path / "train", classes), _tree(tmp_path / "test", ["x", "y", "z"])
    # with a test tree every class of the root trains; without one, half are drawn for testing
    assert tune.train_classes("folder", str(train), 0, None, test_root=str(test)) == 12
    assert tune.train_classes("folder", str(train), 0, None) == 6
    assert tune.fold_count("folder", 0.25, str(train), 0, None, str(test)) == 4
    assert tune.fold_count("folder", 0.25, str(train), 0, None) < 4
    config = tune.base_config("folder", "rll", root=str(train), test_root=str(test))
    assert config["test_root"] == str(test)
    assert config["val_fraction"] == pytest.approx(2 / 12)


def test_the_tuning_score_embeds_on_the_device_the_run_trained_on(monkeypatch):
    import dmlviz.train as train_module
    import dmlviz.train.device as device_module

    asked, used = [], []

    class FakeRun:
        config = {"device": "cuda:1"}

        def dataset(self, split):
            return type("D", (), {"labels": [0, 0, 1, 1]})()

        def load_model(self, device="cpu"):
            used.append(("model", device))
            return None

    def embed(model, dataset, device, batch_size):
        used.append(("embed", device))
        return torch.nn.functional.normalize(torch.eye(4)[[0, 0, 1, 1]] + 0.01, dim=1).numpy()

    monkeypatch.setattr(device_module, "pick_device", lambda name: asked.append(name) or "dev")
    monkeypatch.setattr(train_module, "compute_embeddings", embed)
    assert tune.map_at_r(FakeRun()) == pytest.approx(1.0)
    assert asked == ["cuda:1"] and used == [("model", "dev"), ("embed", "dev")]


def test_the_lab_estimate_times_steps_on_the_training_device(monkeypatch):
    estimate._measured_costs.cache_clear()
    seen = []
    real = estimate.training_device

    def device_of(config):
        seen.append(config["device"])
        return real(config)

    monkeypatch.setattr(estimate, "training_device", device_of)
    try:
        epoch_s, eval_s, epochs = estimate._measured_costs("digits", "rll", None, "samples")
    finally:
        estimate._measured_costs.cache_clear()
    assert seen == [None]  # the sweep's config: the best device present, as training picks it
    assert epoch_s > 0 and eval_s > 0 and epochs >= 1


def test_the_demo_time_is_stated_in_one_place():
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert DEMO_TIME in readme.replace("\n", " ")
    for path in ("dmlviz/cli/demo.py", "benchmarks/demo_time.py", "dmlviz/views/runs.py"):
        text = (root / path).read_text()
        assert "minutes" not in text and "min on" not in text, path
