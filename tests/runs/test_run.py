"""The run directory: atomic writes, validation on load, weights_only trainer state, find_runs."""

import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from shared_files import HANG_GUARD_S

from dmlviz.jobs.lock import TrainingLock
from dmlviz.models import build_model
from dmlviz.runs import BrokenRun, Run, RunError, atomic_write_json, find_runs
from dmlviz.runs.run import check_new_run_folder

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


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_torn_metrics_line_is_skipped_named_and_repaired(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    (run.path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo\n{"epoch": 3}\n')
    with pytest.warns(UserWarning, match=r"metrics.jsonl: line 2 is not a JSON record.*--resume"):
        assert run.metrics()["epoch"].tolist() == [1, 3]
    with pytest.warns(UserWarning):
        row = run.summary()
    assert row["state"] == "created"
    with pytest.warns(UserWarning):
        run.truncate_metrics(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.metrics()["epoch"].tolist() == [1, 3]


def test_metrics_hold_plain_json_after_truncation(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.append_metrics({"epoch": 1, "loss": 1.0})
    run.append_metrics({"epoch": 2, "loss": float("nan"), "map@r": 0.5})
    run.append_metrics({"epoch": 1, "loss": 0.9})  # an epoch logged twice by an older dmlviz
    run.truncate_metrics(2)

    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=refuse) for line in lines]
    assert records == [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": None, "map@r": 0.5}]


def test_corrupt_labels_and_mismatched_embeddings_name_the_file_and_the_command(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    (run.path / "labels.npz").write_bytes(b"nope")
    with pytest.raises(RunError, match=f"dmlviz train --resume --out {run.path}` rebuilds it"):
        run.labels()
    run._save_npz("embeddings/test.npz", embeddings=np.zeros((5, 4)), labels=np.zeros(4))
    with pytest.raises(RunError, match=r"embeddings/test.npz holds embeddings of shape \(5, 4\) "
                       r"but labels of shape \(4,\).*dmlviz embed"):  # fmt: skip
        run.embeddings("test")


def test_missing_weights_say_how_to_rebuild_them(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.set_status("finished", epoch=3, epochs=3)
    with pytest.raises(RunError, match="trainer_state.pt is gone too\\): retrain the run"):
        run.load_model()
    run.save_trainer_state({"epoch": 3})
    with pytest.raises(RunError, match=f"holds the weights.*--resume --out {run.path}"):
        run.load_model()


def test_a_new_run_refuses_a_folder_with_an_earlier_runs_files_or_a_file(tmp_path):
    old = tmp_path / "old"
    (old / "eval").mkdir(parents=True)
    (old / "labels.npz").write_bytes(b"")
    (old / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"holds files of an earlier run \(labels.npz, eval/\)"):
        Run.create(old, CONFIG)
    assert not (old / "config.json").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="is a file, not a folder"):
        check_new_run_folder(tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("")
    check_new_run_folder(tmp_path / "mine")  # other files are fine


def test_a_running_status_whose_process_is_gone_is_told(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.set_status("running", epoch=1, epochs=3)
    assert not run.writer_gone()
    status = run.status()
    atomic_write_json(run.path / "status.json", {**status, "pid": _dead_pid()})
    assert run.writer_gone()
    atomic_write_json(run.path / "status.json", {**status, "pid_started": 1.0})  # a reused pid
    assert run.writer_gone()
    atomic_write_json(run.path / "status.json", {**status, "pid": _dead_pid(), "host": "elsewhere"})
    assert not run.writer_gone()
    run.set_status("interrupted", epoch=1, epochs=3)
    assert not run.writer_gone()


def test_the_training_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    first, second = TrainingLock(tmp_path / "run"), TrainingLock(tmp_path / "run")
    first.acquire()
    with pytest.raises(RunError, match="is being trained by another process"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dmlviz.jobs.lock import TrainingLock; "
         f"lock = TrainingLock({str(tmp_path / 'run')!r}); lock.acquire(); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match="being trained"):
            first.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(HANG_GUARD_S)
        first.acquire()
        first.release()
    finally:
        holder.kill()


def test_a_run_being_trained_is_refused_naming_the_holder(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.check_not_training("evaluate it")  # no lock file yet
    lock = TrainingLock(run.path)
    lock.acquire()
    run.set_status("running", epoch=1, epochs=3)
    try:
        with pytest.raises(
            RunError, match=rf"trained right now \(pid {os.getpid()} on .*train.lock"
        ):
            run.check_not_training("evaluate it")
    finally:
        lock.release()
    run.check_not_training("evaluate it")  # the lock file stays, unheld


def test_a_summary_tells_a_run_whose_trainer_died(tmp_path):
    run = Run.create(tmp_path / "run", CONFIG)
    run.set_status("running", epoch=1, epochs=3)
    assert run.summary()["state"] == "running"
    atomic_write_json(run.path / "status.json", {**run.status(), "pid": _dead_pid()})
    assert run.summary()["state"] == "died"


def test_a_folder_of_runs_is_not_a_run_and_names_its_runs(tmp_path):
    for name in ("a", "b"):
        Run.create(tmp_path / "sweep" / name, CONFIG)
    with pytest.raises(
        RunError, match=r"not a run but a folder of 2 run\(s\) \(a, b\).*dmlviz runs"
    ):
        Run.load(tmp_path / "sweep")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="it is not a dmlviz run"):
        Run.load(tmp_path / "empty")


@pytest.mark.parametrize(
    ("file", "command"),
    [
        ("eval/test_metrics.json", "dmlviz evaluate"),
        ("eval/consistency.parquet", "dmlviz evaluate"),
        ("projections/test_pca.json", "dmlviz project --force"),
        ("embeddings/test.npz", "dmlviz embed"),
        ("status.json", "dmlviz train --resume --out"),
    ],
)
def test_a_corrupt_file_names_the_command_that_remakes_it(tmp_path, file, command):
    run = Run.create(tmp_path / "my run", CONFIG)
    (run.path / file).parent.mkdir(parents=True, exist_ok=True)
    (run.path / file).write_text("{oops")
    reads = {
        "eval/test_metrics.json": lambda: run.eval_metrics("test"),
        "eval/consistency.parquet": lambda: run._read_parquet(file),
        "projections/test_pca.json": lambda: run._read_json(file),
        "embeddings/test.npz": lambda: run.embeddings("test"),
        "status.json": run.status,
    }
    with pytest.raises(RunError, match=rf"corrupt .*`?{command} '{run.path}'"):
        reads[file]()
