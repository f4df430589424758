"""The run directory: the one place that reads and writes ``runs/<name>/``. Format: docs/run-format.md."""

from dmlviz.runs.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
)
from dmlviz.runs.imported import ImportedImages, import_embeddings, imported_info
from dmlviz.runs.readers import ImportInputError
from dmlviz.runs.run import BrokenRun, Run, RunError, find_runs

__all__ = [
    "BrokenRun",
    "ImportInputError",
    "ImportedImages",
    "Run",
    "RunError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "find_runs",
    "import_embeddings",
    "imported_info",
]
