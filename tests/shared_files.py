"""Paths the tests share: the repository and ../shared (skipping a test when ../shared is absent).

A plain module rather than ``conftest``: test folders with a conftest of their own would make
``from conftest import ...`` ambiguous.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DMLVIZ_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared, skipping the test with a message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these checks need the project's ../shared folder")
    return path


# How long a test waits for work that makes progress (a process, a page, a cluster) before it calls
# it hung. Only a hang may fail on time: on a busy 2-core machine the work is slow, not wrong.
HANG_GUARD_S = 600
