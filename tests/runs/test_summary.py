"""A run's summary row reads exactly ``SUMMARY_FILES``: the files a cached runs table watches."""

import os
from pathlib import Path

import pytest

from dmlviz.registry.metrics import summary_metrics
from dmlviz.runs import SUMMARY_FILES, Run, atomic_write_json
from dmlviz.runs.files import CONSISTENCY_SUMMARY, REPLAY_SUMMARY, eval_metrics_file

CONFIG = {"name": "r", "dataset": "digits", "model": "mlp", "embedding_dim": 8, "loss": "rll"}


def _run_with_every_summary_file(folder: Path) -> Run:
    run = Run.create(folder, {**CONFIG, "noise_rate": 0.2, "seed": 3})
    run.append_metrics({"epoch": 1, "map@r": 0.4})
    run.append_metrics({"epoch": 2, "map@r": 0.5})
    atomic_write_json(folder / eval_metrics_file("test"), {"map@r": 0.6, "recall@1": 0.7})
    atomic_write_json(folder / CONSISTENCY_SUMMARY, {"detector_auroc": 0.8})
    atomic_write_json(folder / REPLAY_SUMMARY, {"auroc_peak_epoch": 2, "memorised_end": 0.1})
    return run


@pytest.fixture
def opened(monkeypatch):
    """Every path below a run folder that is opened, stat-ed or tested for existence."""
    seen: list[str] = []
    real_stat = os.stat

    def spy(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    real_open = Path.open

    def spy_open(self, *args, **kwargs):
        seen.append(os.fspath(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(os, "stat", spy)
    monkeypatch.setattr(Path, "open", spy_open)
    return seen


def test_summary_reads_only_the_summary_files(tmp_path, opened):
    run = _run_with_every_summary_file(tmp_path / "run")
    opened.clear()
    row = run.summary()
    read = {Path(p).relative_to(run.path).as_posix() for p in opened if Path(p) != run.path}
    assert read, "the spy saw no file: the test no longer watches how summary() reads"
    assert read <= set(SUMMARY_FILES), f"summary() reads {read - set(SUMMARY_FILES)}"
    assert row["best_map@r"] == 0.5 and row["map@r"] == 0.6 and row["recall@1"] == 0.7
    assert row["detector_auroc"] == 0.8 and row["memorised_end"] == 0.1


def test_summary_without_status_reads_the_weights_file_it_watches(tmp_path, opened):
    run = _run_with_every_summary_file(tmp_path / "run")
    (run.path / "status.json").unlink()
    opened.clear()
    assert run.summary()["state"] == "created"
    read = {Path(p).relative_to(run.path).as_posix() for p in opened if Path(p) != run.path}
    assert "model.safetensors" in read and read <= set(SUMMARY_FILES)


def test_every_summary_metric_is_a_column_of_the_row(tmp_path):
    row = Run.create(tmp_path / "run", CONFIG).summary()
    assert all(metric.key in row for metric in summary_metrics())
