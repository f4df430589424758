"""Finding runs: the one rule for "is this folder a run" and the one walk over a runs folder.

A run folder holds at least one of the run files ``dmlviz.runs.files.RUN_MARKERS``
(``config.json``, ``model.safetensors``, ``metrics.jsonl``, ``status.json`` or
``trainer_state.pt``). The walk skips hidden folders, a
run's own subfolders (``eval/``, ``projections/``) and the short runs a tuning study trains
(``trials/`` and ``confirm/`` beside its ``study.db``): the study is shown as a whole, and its
dozens of fold runs would crowd every list of runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from dmlviz.runs.files import RUN_MARKERS

STUDY_FILE = "study.db"  # a tuning study (``dmlviz.experiments.tune``), in SQLite
STUDY_JOURNAL = "study.journal"  # or as an Optuna journal, which Ray tasks on several nodes share
STUDY_FILES = (STUDY_FILE, STUDY_JOURNAL)
STUDY_RUN_FOLDERS = ("trials", "confirm")  # its fold runs, not runs of their own


def is_run(path: str | Path, files: list[str] | None = None) -> bool:
    """Whether the folder ``path`` (whose file names are ``files`` when already listed) is a run."""
    if files is None:
        return any((Path(path) / marker).is_file() for marker in RUN_MARKERS)
    return any(marker in files for marker in RUN_MARKERS)


def _walk(root: Path, max_depth: int | None = None) -> Iterator[tuple[Path, list[str], bool]]:
    """``(folder, file names, is a run)`` for every folder the walk visits (at most
    ``max_depth`` levels below ``root`` when given), sorted by path."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
        if max_depth is not None and len(Path(folder).relative_to(root).parts) >= max_depth:
            subfolders[:] = []
        if _holds_study(files):
            subfolders[:] = [s for s in subfolders if s not in STUDY_RUN_FOLDERS]
        run = is_run(folder, files)
        if run:
            subfolders[:] = []
        yield Path(folder), files, run


def run_folders(root: str | Path, max_depth: int | None = None) -> list[Path]:
    """Every run folder below ``root`` (nested folders included, e.g. a sweep's; at most
    ``max_depth`` levels down when given), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((folder for folder, _, run in _walk(root, max_depth) if run), key=str)


def study_folders(root: str | Path) -> list[Path]:
    """Every folder below ``root`` holding a tuning study (``study.db`` or ``study.journal``),
    sorted by path."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((folder for folder, files, run in _walk(root) if _holds_study(files) and not run),
                  key=str)  # fmt: skip


def _holds_study(files: list[str]) -> bool:
    return any(name in files for name in STUDY_FILES)
