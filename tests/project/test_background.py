"""The background UMAP of a split: PCA at once, progress, one computation at a time, failures."""

import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from filelock import FileLock
from shared_files import HANG_GUARD_S

from dmlviz.jobs import progress
from dmlviz.project import background
from dmlviz.project.background import (
    compute_umap,
    prepare_maps,
    start_umap,
    umap_progress,
)
from dmlviz.project.maps import umap_projection
from dmlviz.runs import atomic_write_json
from dmlviz.runs.files import umap_lock_file, umap_log_file, umap_progress_file

CONFIG = {"name": "tiny", "dataset": "digits", "model": "mlp", "embedding_dim": 6, "loss": "rll"}


@pytest.fixture
def run(tmp_path, make_run):
    return make_run(tmp_path / "run", config=CONFIG)


@pytest.fixture
def spawns(monkeypatch):
    spawned = []
    monkeypatch.setattr(background, "_spawn", lambda path, split: spawned.append((path, split)))
    return spawned


def test_umap_reports_its_epochs():
    x = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    seen = []
    umap_projection(x, n_neighbors=5, n_epochs=20, progress=lambda *step: seen.append(step))
    assert {stage for stage, _, _ in seen} == {"layout"}  # 40 points: the kNN search is instant
    seen = [(d, t) for _, d, t in seen]
    assert seen[0] == (0, 20) and seen[-1] == (20, 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_prepare_maps_shows_pca_at_once_and_starts_umap(run, spawns):
    assert prepare_maps(run, "test") == "started"
    assert run.projection("test", "pca")[0].shape == (30, 2)
    assert run.projection("test", "umap") is None
    assert spawns == [(run.path, "test")]
    assert umap_progress(run, "test")["state"] == "running"  # the child has not started yet
    assert prepare_maps(run, "test") is None  # a map is stored: nothing to do
    assert start_umap(run, "test") == "running"  # joined, not started twice
    assert len(spawns) == 1


def test_compute_umap_records_progress_and_stores_the_map(run, monkeypatch):
    stages = []
    write = progress.atomic_write_json
    monkeypatch.setattr(
        progress,
        "atomic_write_json",
        lambda path, record: (stages.append(record["stage"]), write(path, record)),
    )
    assert compute_umap(run, "test")
    assert stages[0] == "nearest-neighbour graph" and "layout" in stages
    assert stages[-2:] == ["trustworthiness", "stored"]
    record = umap_progress(run, "test")
    assert record["state"] == "done" and record["seconds"] >= 0
    assert run.projection("test", "umap")[1]["params"]["method"] == "umap"
    assert start_umap(run, "test") == "stored"


def test_a_second_computation_waits_for_the_first(run, spawns):
    (run.path / "projections").mkdir()
    lock = FileLock(run.path / umap_lock_file("test"), timeout=0)
    lock.acquire()  # another process computes this split's UMAP
    try:
        assert compute_umap(run, "test") is False
        assert start_umap(run, "test") == "running"
        assert spawns == []
    finally:
        lock.release()
    assert start_umap(run, "test") == "started" and len(spawns) == 1


def test_a_failure_is_recorded(run, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("the embeddings are all NaN")

    monkeypatch.setattr(background, "project_run", broken)
    with pytest.raises(ValueError):
        compute_umap(run, "test")
    record = umap_progress(run, "test")
    assert record["state"] == "failed"
    assert record["error"] == "ValueError: the embeddings are all NaN"


def test_a_vanished_computation_reads_as_failed(run):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run.path / "projections").mkdir()
    atomic_write_json(
        run.path / umap_progress_file("test"),
        {"state": "running", "stage": "layout", "pid": gone.pid, "updated": time.time()},
    )
    record = umap_progress(run, "test")
    assert record["state"] == "failed" and "stopped" in record["error"]


def test_a_computation_that_died_unreaped_reads_as_failed(run):
    """The dashboard never waits for the child it spawned: a crashed child stays a zombie."""
    dead = subprocess.Popen([sys.executable, "-c", "import os; os._exit(1)"])
    deadline = time.time() + HANG_GUARD_S
    while time.time() < deadline and psutil.Process(dead.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    (run.path / "projections").mkdir()
    atomic_write_json(
        run.path / umap_progress_file("test"),
        {"state": "running", "stage": "layout", "pid": dead.pid, "updated": time.time()},
    )
    record = umap_progress(run, "test")
    dead.wait()
    assert record["state"] == "failed" and "stopped" in record["error"]


def test_the_background_process_computes_the_map(run):
    """The real thing: a child process (numba's JIT off, inherited) stores the map."""
    assert start_umap(run, "test") == "started"
    deadline = time.time() + HANG_GUARD_S  # the loop ends when the child does
    while time.time() < deadline and umap_progress(run, "test")["state"] == "running":
        time.sleep(0.5)
    assert umap_progress(run, "test")["state"] == "done", (
        run.path / umap_log_file("test")
    ).read_text()
    assert run.projection("test", "umap")[0].shape == (30, 2)
