"""Shared test setup: paths to ../shared, and a quiet, deterministic, CPU-only environment."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # UMAP on tiny test data: skip the 30-40 s JIT
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DMLVIZ_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared, skipping the test with a message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these checks need the project's ../shared folder")
    return path
