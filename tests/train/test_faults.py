"""Training under faults: crashes mid-checkpoint, a second trainer, stale temps, divergence,
lost labels or weights, and folders that are no place for a new run."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dmlviz.jobs.lock import TrainingLock
from dmlviz.runs import Run, RunError
from dmlviz.train import train

TINY = {"dataset": "digits", "loss": "contrastive", "epochs": 2, "batches_per_epoch": 3,
        "eval_every": 0, "num_threads": 1, "tensorboard": False}  # fmt: skip


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_crash_in_the_first_checkpoint_leaves_one_record_per_epoch(tmp_path, monkeypatch):
    def killed(self, state):
        raise KeyboardInterrupt  # Ctrl-C (or kill -9) after the epoch's record, before its state

    monkeypatch.setattr(Run, "save_trainer_state", killed)
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tmp_path / "r", progress=False)
    monkeypatch.undo()
    run = train(None, tmp_path / "r", resume=True, progress=False)
    assert run.metrics()["epoch"].tolist() == [1, 2]


def test_resumed_metrics_are_plain_json(tmp_path):
    train({**TINY, "eval_every": 2}, tmp_path / "r", progress=False)  # epoch 1 has no map@r
    run = train({**TINY, "eval_every": 2, "epochs": 3}, tmp_path / "r", resume=True, progress=False)

    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=refuse) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2, 3] and records[0].get("map@r") is None


def test_a_run_being_trained_refuses_a_second_trainer(tmp_path):
    out = tmp_path / "r"
    train(TINY, out, progress=False)
    held = TrainingLock(out)
    held.acquire()
    with pytest.raises(RunError, match="is being trained by another process"):
        train({**TINY, "epochs": 3}, out, resume=True, progress=False)
    held.release()
    new = TrainingLock(tmp_path / "new")
    new.acquire()
    with pytest.raises(RunError, match="is being trained by another process"):
        train(TINY, tmp_path / "new", progress=False)
    new.release()
    assert not (tmp_path / "new" / "config.json").exists()
    assert Run.load(out).metrics()["epoch"].tolist() == [1, 2]
    train({**TINY, "epochs": 3}, out, resume=True, progress=False)
    after = TrainingLock(out)
    after.acquire()  # train let it go
    after.release()


def test_resume_removes_stale_temporaries(tmp_path):
    run = train(TINY, tmp_path / "r", progress=False)
    stale = run.path / f".trainer_state.{_dead_pid()}-abcdefgh.pt"
    stale.write_bytes(b"x" * 1000)
    train(None, run.path, resume=True, progress=False)
    assert not stale.exists()


@pytest.mark.parametrize("loss", ["contextual", "rll", "multisimilarity", "triplet", "contrastive"])
def test_divergence_names_the_epoch_and_step_for_every_loss(tmp_path, loss):
    with pytest.raises(FloatingPointError, match=r"training diverged: .* at epoch 1, step \d+\. "
                       r"Lower the learning rate \(lr=1e\+08"):  # fmt: skip
        train({**TINY, "loss": loss, "lr": 1e8}, tmp_path / loss, progress=False)
    status = Run.load(tmp_path / loss).status()
    assert status["state"] == "failed" and "training diverged" in status["error"]


def test_resume_rebuilds_corrupt_labels_and_missing_weights(tmp_path):
    run = train({**TINY, "noise_rate": 0.3}, tmp_path / "r", progress=False)
    labels, weights = run.labels(), load_file(str(run.path / "model.safetensors"))
    (run.path / "labels.npz").write_bytes(b"torn")
    (run.path / "model.safetensors").unlink()
    with pytest.raises(RunError, match="--resume --out"):
        run.load_model()
    with pytest.warns(UserWarning, match="labels.npz is corrupt.*rebuilding it"):
        train(None, run.path, resume=True, progress=False)
    rebuilt = run.labels()
    np.testing.assert_array_equal(rebuilt.observed, labels.observed)
    np.testing.assert_array_equal(rebuilt.flipped, labels.flipped)
    again = load_file(str(run.path / "model.safetensors"))
    assert all(torch.equal(again[key], weights[key]) for key in weights)


def test_a_new_run_refuses_an_earlier_runs_leftovers_and_a_file(tmp_path):
    old = tmp_path / "old"
    (old / "eval").mkdir(parents=True)
    (old / "labels.npz").write_bytes(b"old noise")
    (old / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(RunError, match=r"holds files of an earlier run \(metrics.jsonl, "
                       r"labels.npz, eval/\) but no config.json"):  # fmt: skip
        train(TINY, old, progress=False)
    assert sorted(p.name for p in old.iterdir()) == ["eval", "labels.npz", "metrics.jsonl"]
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="is a file, not a folder"):
        train(TINY, tmp_path / "file", progress=False)


def test_resume_repairs_a_torn_metrics_line(tmp_path):
    run = train(TINY, tmp_path / "r", progress=False)
    path = run.path / "metrics.jsonl"
    path.write_text(path.read_text() + '{"epoch": 3, "lo')
    with pytest.warns(UserWarning, match="line 3 is not a JSON record"):
        train({**TINY, "epochs": 3}, run.path, resume=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.metrics()["epoch"].tolist() == [1, 2, 3]
