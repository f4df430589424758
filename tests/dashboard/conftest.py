"""Fixtures of the dashboard tests: a fresh AppTest on the session's runs folder (``runs_dir``,
tests/conftest.py)."""

from __future__ import annotations

import pytest
from fixture_runs import APP
from shared_files import HANG_GUARD_S


@pytest.fixture
def app(runs_dir, monkeypatch):
    """An AppTest of the dashboard on ``runs_dir``, caches cleared, not yet run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(runs_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S)


@pytest.fixture(autouse=True)
def umap_spawns(monkeypatch) -> list:
    """The background UMAP processes the pages asked for, as ``(run path, split)``, none started:
    on the 2-core test machines a UMAP without numba's JIT takes minutes (tests of the job
    itself are in tests/project/test_background.py)."""
    from dmlviz.project import background

    spawned: list = []
    monkeypatch.setattr(background, "_spawn", lambda path, split: spawned.append((path, split)))
    return spawned


@pytest.fixture(autouse=True)
def _keep_main_module():
    """AppTest installs the app script as ``__main__``; restore pytest's afterwards, or later tests
    that spawn processes (DDP, parallel sweeps) would re-run the app script in each child."""
    import sys

    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
