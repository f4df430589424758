"""The run directory: atomic writes, validation on load, weights_only trainer state, find_runs."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from dmlviz.models import build_model
from dmlviz.runs import BrokenRun, Run, RunError, atomic_write_json, find_runs

CONFIG = {
    "name": "r",
    "dataset": "digits",
    "model": "mlp",
    "embedding_dim": 8,
    "in_channels": 1,
    "image_size": 8,
    "loss": "contextual",
}


def _model():
    torch.manual_seed(0)
    return build_model("mlp", embedding_dim=8, in_channels=1, image_size=8)


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})

    def broken_replace(src, dst):
        raise OSError("disk went away between write and rename")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_model_save_keeps_the_previous_weights(tmp_path, monkeypatch):
    run = Run.create(tmp_path / "run", CONFIG)
    model = _model()
    run.save_model(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        run.save_model(model)
    monkeypatch.undo()
    reloaded = run.load_model()
    torch.testing.assert_close(reloaded.state_dict(), _model().state_dict())
    assert not [p for p in run.path.iterdir() if p.name.startswith(".")]


def test_load_model_rebuilds_from_the_directory_alone(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    model = _model()
    run.save_model(model)
    reloaded = Run.load(tmp_path / "run").load_model()
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(reloaded(x), model.eval()(x))
    assert not reloaded.training


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(RunError, match="is not a run directory"):
        Run.load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="has no config.json"):
        Run.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config.json is corrupt"):
        Run.load(bad)
    (bad / "config.json").write_text(json.dumps({"dataset": "digits"}))
    with pytest.raises(RunError, match="lacks model, embedding_dim, loss"):
        Run.load(bad)


def test_missing_or_corrupt_weights_and_files(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    with pytest.raises(RunError, match="model.safetensors is missing"):
        run.load_model()
    (run.path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match="model.safetensors is corrupt"):
        run.load_model()
    (run.path / "trainer_state.pt").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="trainer_state.pt is corrupt"):
        run.load_trainer_state()
    (run.path / "labels.npz").write_bytes(b"nope")
    with pytest.raises(RunError, match="labels.npz is corrupt"):
        run.labels()
    with pytest.raises(RunError, match="dmlviz embed"):
        run.embeddings("test")
    (run.path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo')
    with pytest.raises(RunError, match="metrics.jsonl is corrupt"):
        run.metrics()


def test_weights_that_do_not_fit_the_config_are_reported(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.save_model(build_model("mlp", embedding_dim=4, in_channels=1, image_size=8))
    with pytest.raises(RunError, match="does not fit the model in config.json"):
        run.load_model()


def test_trainer_state_loads_with_weights_only(tmp_path, monkeypatch):
    run = Run.create(tmp_path / "run", CONFIG)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    optimizer.step()
    state = {"epoch": 3, "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}
    run.save_trainer_state(state)
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = run.load_trainer_state()
    assert calls == [True]
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["rng"], state["rng"])


def test_trainer_state_with_arbitrary_objects_is_refused(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    torch.save({"epoch": 1, "sneaky": pd.Timestamp("2024-01-01")}, run.path / "trainer_state.pt")
    with pytest.raises(RunError, match="trainer_state.pt is corrupt"):
        run.load_trainer_state()


def test_metrics_append_truncate_and_summary(tmp_path):
    run = Run.create(tmp_path / "run", {**CONFIG, "epochs": 3, "noise_rate": 0.2, "seed": 1})
    for epoch, value in ((1, 0.2), (2, 0.5), (3, 0.4)):
        run.append_metrics({"epoch": epoch, "loss": np.float32(1.0 / epoch), "map@r": value})
    assert run.best_training_metric("map@r") == 0.5
    run.truncate_metrics(1)
    assert run.metrics()["epoch"].tolist() == [1]
    run.set_status("interrupted", epoch=1, epochs=3)
    row = run.summary()
    assert row["state"] == "interrupted" and row["epoch"] == 1 and row["noise_rate"] == 0.2
    assert row["best_map@r"] == 0.2 and row["map@r"] is None


def test_find_runs_lists_broken_runs_with_the_reason(tmp_path):
    Run.create(tmp_path / "good", CONFIG)
    nested = tmp_path / "sweep" / "b"
    Run.create(nested, CONFIG)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    (tmp_path / "not-a-run").mkdir()
    found = find_runs(tmp_path)
    assert [f.path.name for f in found] == ["broken", "good", "b"]
    assert isinstance(found[0], BrokenRun) and "corrupt" in found[0].reason


def test_find_runs_leaves_out_the_trial_runs_of_a_tuning_study(tmp_path):
    config = {"dataset": "digits", "model": "mlp", "embedding_dim": 8, "loss": "rll"}
    Run.create(tmp_path / "sweep" / "a", config)
    Run.create(tmp_path / "tune" / "trials" / "trial-0", config)
    (tmp_path / "tune" / "study.db").write_bytes(b"")
    assert [r.path.name for r in find_runs(tmp_path)] == ["a"]
    assert [r.path.name for r in find_runs(tmp_path / "tune" / "trials")] == ["trial-0"]
