"""The run directory: the one place that reads and writes ``runs/<name>/``. Format: docs/run-format.md.

``run.py``: ``Run``, one run folder's files; ``walk.py``: which folders are runs and the one walk
that finds them; ``atomic.py``: writes that a reader never sees half done.
"""

from dmlviz.runs.atomic import (
    DiskFullError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    file_mode,
    remove_stale_temporaries,
)
from dmlviz.runs.run import CONFIG, METRICS, BrokenRun, Run, RunError, find_runs
from dmlviz.runs.walk import (
    STUDY_FILE,
    SUMMARY_FILES,
    embeddings_file,
    is_run,
    projection_file,
    run_folders,
    split_files,
    study_folders,
)

__all__ = [
    "CONFIG",
    "METRICS",
    "STUDY_FILE",
    "BrokenRun",
    "DiskFullError",
    "Run",
    "SUMMARY_FILES",
    "RunError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "embeddings_file",
    "file_mode",
    "find_runs",
    "is_run",
    "projection_file",
    "remove_stale_temporaries",
    "run_folders",
    "split_files",
    "study_folders",
]
