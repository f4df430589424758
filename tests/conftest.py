"""Shared test setup: a quiet, deterministic, CPU-only environment (paths live in shared_files)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # UMAP on tiny test data: skip the 30-40 s JIT
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """A folder with four evaluated, mapped digits runs and one broken run folder
    (tests/fixture_runs.py), built once for the session: the dashboard and the report
    tests read it."""
    from fixture_runs import build_runs

    root = tmp_path_factory.mktemp("runs")
    build_runs(root)
    return root


@pytest.fixture(scope="session")
def make_run():
    """The one builder of run folders without training (``tests/fake_runs.make_run``): call it
    with the run's path and the options its test needs (splits, n, dim, classes, flipped labels
    or a noise rate, metrics, status, replay epochs, imported)."""
    from fake_runs import make_run

    return make_run
