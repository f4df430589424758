"""The run directory: the one place that reads and writes ``runs/<name>/``. Format: docs/run-format.md.

``files.py``: the name of every file of the format; ``run.py``: ``Run``, one run folder's files
(its parts: ``store.py``, ``training_log.py``, ``replay_record.py``); ``summary.py``: a run's row
in a table of runs and the files it reads; ``walk.py``: which folders are runs and the one walk
that finds them; ``atomic.py``: writes that a reader never sees half done; ``readers.py``: the
files ``dmlviz import`` reads (arrays, labels, image lists, OML tables), checked; ``imported.py``:
a run made of embeddings computed elsewhere; ``export.py``: a run's embeddings as those files.
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
from dmlviz.runs.files import (
    CONFIG,
    METRICS,
    embeddings_file,
    eval_files,
    projection_file,
    replay_files,
    replay_layout_file,
    split_files,
)
from dmlviz.runs.imported import ImportedImages, import_embeddings, imported_info
from dmlviz.runs.readers import ImportInputError
from dmlviz.runs.run import BrokenRun, Run, RunError, find_runs
from dmlviz.runs.summary import SUMMARY_FILES
from dmlviz.runs.walk import STUDY_FILE, STUDY_FILES, is_run, run_folders, study_folders

__all__ = [
    "CONFIG",
    "METRICS",
    "STUDY_FILE",
    "STUDY_FILES",
    "BrokenRun",
    "DiskFullError",
    "ImportInputError",
    "ImportedImages",
    "Run",
    "SUMMARY_FILES",
    "RunError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "embeddings_file",
    "eval_files",
    "file_mode",
    "find_runs",
    "is_run",
    "projection_file",
    "remove_stale_temporaries",
    "replay_files",
    "replay_layout_file",
    "import_embeddings",
    "imported_info",
    "run_folders",
    "split_files",
    "study_folders",
]
