"""The training loop on digits: learning, resume equivalence, cancellation, crashes, label noise."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dmlviz.evaluate import retrieval_metrics
from dmlviz.models import build_model
from dmlviz.runs import Run, RunError
from dmlviz.train import ConfigError, compute_embeddings, embed_run, train

TINY = {"dataset": "digits", "epochs": 3, "batches_per_epoch": 4, "eval_every": 0, "num_threads": 1}


def _weights(run):
    return load_file(str(run.path / "model.safetensors"))


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("loss", ["contextual", "rll", "contrastive"])
def test_training_improves_test_map_at_r(tmp_path, loss):
    config = {"dataset": "digits", "loss": loss, "epochs": 6, "eval_every": 6, "num_threads": 1}
    run = train(config, tmp_path / loss, progress=False)
    test = run.dataset("test")
    torch.manual_seed(0)
    untrained = build_model(**run.model_kwargs())
    before = retrieval_metrics(compute_embeddings(untrained, test), test.labels).metrics["map@r"]
    after = run.metrics()["map@r"].iloc[-1]
    assert after > before + 0.1, (before, after)
    assert run.status()["state"] == "finished"


def test_a_finished_run_holds_every_file(tmp_path):
    records = []
    run = train({**TINY, "loss": "contrastive", "eval_every": 2}, tmp_path / "r", progress=False,
                on_epoch=records.append)  # fmt: skip
    config = json.loads((run.path / "config.json").read_text())
    assert config["image_size"] == 8 and config["in_channels"] == 1 and config["name"] == "r"
    assert config["dmlviz_version"] and config["torch_version"] == torch.__version__
    frame = run.metrics()
    assert frame["epoch"].tolist() == [1, 2, 3]
    assert {"loss", "lr", "backbone_lr", "images_per_s", "seconds", "step"} <= set(frame)
    assert frame["map@r"].notna().tolist() == [False, True, True]  # every 2nd and the last
    assert [r["epoch"] for r in records] == [1, 2, 3]
    state = run.load_trainer_state()
    assert state["epoch"] == 3 and set(state) >= {"optimizer", "scheduler", "rng", "model"}
    assert run.status()["state"] == "finished" and run.status()["epoch"] == 3
    model = Run.load(run.path).load_model()
    embed_run(run)
    embeddings, labels = run.embeddings("test")
    np.testing.assert_array_equal(labels, run.dataset("test").labels)
    np.testing.assert_allclose(
        embeddings, compute_embeddings(model, run.dataset("test")), atol=1e-6
    )
    assert not [p for p in run.path.rglob(".*")]  # no temp files left


def test_resume_after_cancel_reaches_the_same_weights(tmp_path):
    config = {**TINY, "loss": "contextual"}
    straight = train(config, tmp_path / "straight", progress=False)

    polls = []
    batches = config["batches_per_epoch"]

    def stop_in_third_epoch():
        polls.append(1)
        return len(polls) > 2 * batches + 1  # two epochs and one batch of the third

    cut = train(config, tmp_path / "cut", progress=False, should_stop=stop_in_third_epoch)
    assert cut.status()["state"] == "cancelled" and cut.status()["epoch"] == 2
    assert cut.load_trainer_state()["epoch"] == 2
    resumed = train(None, tmp_path / "cut", resume=True, progress=False)
    assert resumed.status()["state"] == "finished"
    _assert_same_weights(straight, resumed)
    assert resumed.metrics()["loss"].tolist() == straight.metrics()["loss"].tolist()


def test_a_crash_keeps_the_last_epoch_and_resume_recovers(tmp_path):
    config = {**TINY, "loss": "rll", "augment": False}
    straight = train(config, tmp_path / "straight", progress=False)

    def crash(record):
        if record["epoch"] == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        train(config, tmp_path / "crashed", progress=False, on_epoch=crash)
    crashed = Run.load(tmp_path / "crashed")
    assert crashed.status()["state"] == "failed" and "power cut" in crashed.status()["error"]
    assert crashed.load_trainer_state()["epoch"] == 1

    def ctrl_c():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "crashed", resume=True, progress=False, should_stop=ctrl_c)
    assert crashed.status()["state"] == "interrupted" and crashed.status()["epoch"] == 1
    resumed = train(config, tmp_path / "crashed", resume=True, progress=False)
    _assert_same_weights(straight, resumed)
    assert resumed.metrics()["epoch"].tolist() == [1, 2, 3]


def test_resume_refuses_a_different_experiment_and_new_runs_refuse_old_folders(tmp_path):
    config = {**TINY, "loss": "contrastive", "epochs": 1}
    train(config, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="loss='rll'"):
        train({**config, "loss": "rll"}, tmp_path / "r", resume=True, progress=False)
    with pytest.raises(RunError, match="already holds a run"):
        train(config, tmp_path / "r", progress=False)
    longer = train({**config, "epochs": 2}, tmp_path / "r", resume=True, progress=False)
    assert longer.config["epochs"] == 2 and longer.metrics()["epoch"].tolist() == [1, 2]


def test_bad_configs_fail_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="noise_rate"):
        train({**TINY, "loss": "rll", "noise_rate": 1.5}, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="needs 12 classes but the train split of digits has 10"):
        train(
            {**TINY, "loss": "rll", "batch_size": 24, "m_per_class": 2},
            tmp_path / "r",
            progress=False,
        )
    assert not (tmp_path / "r" / "config.json").exists()


@pytest.mark.parametrize("kind", ["symmetric", "nearest_class", "small_cluster"])
def test_label_noise_is_recorded_and_the_test_split_stays_clean(tmp_path, kind):
    config = {**TINY, "loss": "contrastive", "epochs": 1, "noise_rate": 0.3, "noise_kind": kind}
    run = train(config, tmp_path / kind, progress=False)
    labels = run.labels()
    train_set = run.dataset("train")
    np.testing.assert_array_equal(labels.clean, train_set.labels)
    assert labels.flipped.mean() == pytest.approx(0.3, abs=0.05)
    np.testing.assert_array_equal(labels.observed != labels.clean, labels.flipped)
    assert labels.kind == kind and labels.rate == 0.3
    embed_run(run, ("test",))
    np.testing.assert_array_equal(run.embeddings("test")[1], run.dataset("test").labels)


def test_compute_embeddings_keeps_the_training_mode(tmp_path):
    run = train({**TINY, "loss": "contrastive", "epochs": 1}, tmp_path / "r", progress=False)
    model = run.load_model().train()
    embeddings = compute_embeddings(model, run.dataset("test"), batch_size=100)
    assert model.training
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(run.dataset("test")), 64)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_tensorboard_scalars_when_installed(tmp_path, monkeypatch):
    written = []

    class FakeWriter:
        def add_scalar(self, key, value, step):
            written.append((key, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr("dmlviz.train.loop._tensorboard_writer", lambda run: FakeWriter())
    train({**TINY, "loss": "contrastive", "epochs": 2}, tmp_path / "r", progress=False)
    assert ("loss", 1) in written and ("images_per_s", 2) in written


def test_missing_imagenet_weights_leave_no_run_behind(tmp_path, monkeypatch):
    from dmlviz.models import PretrainedWeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))  # never downloaded
    config = {**TINY, "loss": "rll", "model": "resnet18", "pretrained": True}
    with pytest.raises(PretrainedWeightsError, match="--no-pretrained"):
        train(config, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
