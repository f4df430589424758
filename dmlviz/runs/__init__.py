"""The run directory: the one place that reads and writes ``runs/<name>/``. Format: docs/run-format.md."""

from dmlviz.runs.atomic import (
    DiskFullError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    remove_stale_temporaries,
)
from dmlviz.runs.imported import ImportedImages, import_embeddings, imported_info
from dmlviz.runs.readers import ImportInputError
from dmlviz.runs.run import BrokenRun, Run, RunError, find_runs

__all__ = [
    "BrokenRun",
    "DiskFullError",
    "ImportInputError",
    "ImportedImages",
    "Run",
    "RunError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "find_runs",
    "remove_stale_temporaries",
    "import_embeddings",
    "imported_info",
]
