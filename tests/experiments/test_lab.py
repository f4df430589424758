"""The noise lab backend: start a real experiment process, watch progress, cancel, resume, finish."""

import json
import time

import pytest
from shared_files import HANG_GUARD_S

from dmlviz.experiments.estimate import estimate_seconds
from dmlviz.experiments.folder import (
    EXPERIMENT_FILE,
    LOCK_FILE,
    FolderBusyError,
    read_lock,
    read_progress,
)
from dmlviz.experiments.launcher import (
    cancel_experiment,
    list_experiments,
    resume_experiment,
    start_experiment,
)
from dmlviz.experiments.spec import experiment_problems as validate_spec
from dmlviz.experiments.state import experiment_state
from dmlviz.runs import Run

SPEC = {
    "dataset": "digits",
    "losses": ["rll"],
    "noise_rates": [0.2],
    "seeds": [0],
    "noise_kind": "symmetric",
    "epochs": 40,
    "umap": False,
    "presets": "paper",
    "name": "tiny",
}


def _wait(predicate, experiment):
    """``predicate()``'s first truthy value; fails when ``experiment`` has ended without one (or
    after ``HANG_GUARD_S``: a hang)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        running = experiment.running()  # asked first: a value written as it ends is seen next
        value = predicate()
        if value:
            return value
        assert running, "the experiment ended first"
        time.sleep(0.1)
    raise AssertionError("hung")


def test_validate_spec_explains_every_problem():
    assert validate_spec(SPEC) == []
    bad = {**SPEC, "losses": [], "noise_rates": [0.2, 1.0], "dataset_root": "/no/such/dir"}
    problems = " | ".join(validate_spec(bad))
    assert "losses=[] is invalid: name at least one loss" in problems
    assert "noise_rate=1.0 is invalid: must be a number in [0, 1)" in problems
    assert "dataset_root='/no/such/dir' is invalid: does not exist" in problems
    assert validate_spec({**SPEC, "name": "../x"})[0].startswith("name='../x' is invalid")
    assert validate_spec({"dataset": "digits"}) == ["the spec lacks losses, noise_rates"]
    assert validate_spec({**SPEC, "losses": "rll"}) == ["losses='rll' is invalid: must be a list"]
    assert validate_spec({**SPEC, "colour": 1}) == ["colour=1 is invalid: unknown setting"]


def test_estimate_grows_with_epochs_and_runs():
    small = estimate_seconds({**SPEC, "epochs": 5})
    assert small > 0
    assert estimate_seconds({**SPEC, "epochs": 500}) > small
    assert estimate_seconds({**SPEC, "epochs": 5, "noise_rates": [0.0, 0.2, 0.4]}) > small
    assert estimate_seconds({**SPEC, "epochs": 5, "umap": True}) > small + 15
    with pytest.raises(ValueError, match="loss='nope' is invalid"):
        estimate_seconds({**SPEC, "losses": ["nope"]})


@pytest.mark.slow
def test_start_watch_cancel_resume_finish(tmp_path):
    experiment = start_experiment(SPEC, tmp_path)
    folder = tmp_path / "tiny"
    assert experiment.folder == folder and experiment.running()
    record = json.loads((folder / EXPERIMENT_FILE).read_text())
    assert record["pid"] == experiment.pid and record["command"][1:4] == ["-m", "dmlviz", "sweep"]
    # the sweep reads its spec, presets included, from the experiment's file, not from options
    assert record["command"][-4:-2] == ["--spec", str(folder / EXPERIMENT_FILE)]
    assert record["spec"]["presets"] == "paper"
    assert read_lock(folder)["pid"] == experiment.pid

    with pytest.raises(FolderBusyError):  # one writer per folder
        start_experiment(SPEC, tmp_path)

    first = _wait(
        lambda: [r for r in read_progress(folder) if r.get("event") == "epoch"], experiment
    )
    assert {"run", "epoch", "epochs", "loss", "images_per_s", "eta_s"} <= set(first[0])
    state = experiment_state(folder)
    assert state["alive"] and state["phase"] == "training" and state["total"] == 1
    assert state["runs"][0]["epochs"] == 40

    cancel_experiment(folder)
    assert not experiment.running()
    state = experiment_state(folder)
    assert state["cancelled"] and state["phase"] == "cancelled" and not state["alive"]
    run_state = state["runs"][0]
    assert run_state["state"] == "cancelled"
    assert Run.load(folder / "rll-noise20-seed0").status()["state"] == "cancelled"
    assert not (folder / LOCK_FILE).exists()

    resumed = resume_experiment(folder)
    assert resumed.wait(HANG_GUARD_S) == 0
    state = experiment_state(folder)
    assert state["finished"] and state["phase"] == "finished" and state["done"] == 1
    assert state["runs"][0]["state"] == "finished" and state["runs"][0]["map@r"] > 0
    run = Run.load(folder / "rll-noise20-seed0")
    assert list(run.metrics()["epoch"]) == list(range(1, 41))  # resumed, not restarted
    assert run.config["preset_source"] == "paper defaults"
    assert (folder / "runs.csv").exists() and list_experiments(tmp_path) == [folder]
    assert not (folder / LOCK_FILE).exists()
    with pytest.raises(ValueError, match="already exists"):
        start_experiment(SPEC, tmp_path)


@pytest.mark.slow
def test_cancel_one_queued_run_and_stale_lock(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 7, "created": 0}))  # stale
    spec = {**SPEC, "losses": ["triplet", "contrastive"], "epochs": 1, "name": "two"}
    experiment = start_experiment(spec, tmp_path)
    cancel_experiment(folder, run="contrastive-noise20-seed0")
    assert experiment.wait(HANG_GUARD_S) == 0
    state = experiment_state(folder)
    runs = {r["run"]: r["state"] for r in state["runs"]}
    assert runs == {"triplet-noise20-seed0": "finished", "contrastive-noise20-seed0": "cancelled"}
    assert state["phase"] == "finished"
