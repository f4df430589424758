"""`dmlviz train` and `dmlviz runs` under bad input and faults: one clear line, never a traceback."""

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from shared_files import HANG_GUARD_S

from dmlviz.cli import main
from dmlviz.runs import Run, atomic_write_json

FAST = ["--dataset", "digits", "--loss", "contrastive", "--epochs", "2", "--batches-per-epoch",
        "3", "--num-threads", "1", "--no-progress", "--no-eval"]  # fmt: skip
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dmlviz(*args: str) -> list[str]:
    return [sys.executable, "-m", "dmlviz", *args]


def test_loss_kwargs_that_are_not_json_show_the_expected_form(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *FAST, "--loss-kwargs", "not json"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --loss-kwargs: 'not json' is not valid JSON" in err
    assert """e.g. '{"k": 4""" in err and "invalid loads value" not in err


def test_a_json_config_with_a_byte_order_mark_is_read(tmp_path):
    config = tmp_path / "c.json"
    config.write_bytes(b"\xef\xbb\xbf" + json.dumps({"dataset": "digits", "seed": 3}).encode())
    assert main(["train", "--config", str(config), *FAST, "--out", str(tmp_path / "r")]) == 0
    assert Run.load(tmp_path / "r").config["seed"] == 3


def test_a_yaml_config_with_a_duplicate_key_is_refused(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nepochs: 5\nloss: rll\nepochs: 2\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "key 'epochs' appears twice (lines 2 and 4)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("leftover", ["file", "old run"])
def test_an_out_that_cannot_take_a_new_run_is_explained(tmp_path, capsys, leftover):
    out = tmp_path / "out"
    if leftover == "file":
        out.write_text("")
    else:
        (out / "embeddings").mkdir(parents=True)
        (out / "labels.npz").write_bytes(b"")
    assert main(["train", *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        "is a file, not a folder" if leftover == "file" else "holds files of an earlier run"
    ) in err


def test_a_full_disk_is_one_line_that_names_the_folder(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "r"
    assert main(["train", *FAST, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (
        f"the disk holding {out} is full" in err and "trainer_state.pt could not be written" in err
    )
    assert f"continue with: dmlviz train --resume --out {out}" in err
    status = Run.load(out).status()
    assert status["state"] == "failed" and status["error"].startswith("DiskFullError: the disk")


def test_divergence_is_one_line(tmp_path, capsys):
    argv = [
        "train",
        *FAST,
        "--loss",
        "multisimilarity",
        "--lr",
        "1e8",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("dmlviz train: error: training diverged: the embeddings became NaN")
    assert "Lower the learning rate" in err and err.count("\n") == 1


def test_runs_tells_a_running_run_whose_process_is_gone(tmp_path, capsys):
    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 0
    run = Run.load(tmp_path / "r")
    run.set_status("running", epoch=1, epochs=2)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    atomic_write_json(run.path / "status.json", {**run.status(), "pid": child.pid})
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert " died " in out.splitlines()[1]
    assert (
        f"{run.path} (pid {child.pid}): continue with dmlviz train --resume --out {run.path}" in out
    )


def test_sigterm_records_interrupted_with_the_reason(tmp_path):
    out = tmp_path / "r"
    argv = ["train", "--dataset", "digits", "--loss", "contrastive", "--epochs", "500",
            "--batches-per-epoch", "3", "--num-threads", "1", "--no-eval", "--out", str(out)]  # fmt: skip
    cli = subprocess.Popen(_dmlviz(*argv), cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert cli.stdout.readline().startswith("epoch 1/500")
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=HANG_GUARD_S)
    finally:
        cli.kill()
    assert cli.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    status = Run.load(out).status()
    assert status["state"] == "interrupted" and status["reason"] == "SIGTERM"
    assert status["epoch"] >= 1 and not Run.load(out).writer_gone()


def test_train_piped_into_head_stops_after_a_saved_epoch_without_a_traceback(tmp_path):
    out = tmp_path / "r"
    argv = ["train", "--dataset", "digits", "--loss", "contrastive", "--epochs", "50",
            "--batches-per-epoch", "3", "--num-threads", "1", "--out", str(out)]  # fmt: skip
    command = " ".join(_dmlviz(*argv)) + " 2>err.txt | head -1; echo ${PIPESTATUS[0]} >code.txt"
    head = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, "PYTHONPATH": ROOT})  # fmt: skip
    assert head.stdout.startswith("epoch 1/50")
    err = (tmp_path / "err.txt").read_text()
    assert (tmp_path / "code.txt").read_text().strip() == "141"
    assert "Traceback" not in err and "stdout closed, so training stopped after epoch" in err
    status = Run.load(out).status()
    assert status["state"] == "interrupted" and status["reason"] == "stdout closed"
    assert status["epoch"] < 50  # it stopped early, not after training on
    assert Run.load(out).metrics()["epoch"].tolist() == list(range(1, status["epoch"] + 1))
