"""A split's UMAP map computed in a background process, with progress a page can poll.

UMAP of 200k points takes minutes, so the dashboard shows PCA at once (``prepare_maps``) and
leaves UMAP to a child process (``start_umap``: ``python -m dmlviz.project.background RUN
SPLIT``, detached by ``dmlviz.jobs.process``). The child holds ``umap_lock_file(split)``
(an ``OsLock``: one computation per run and split, released by the OS however the child ends),
writes its progress to ``umap_progress_file(split)`` (a ``dmlviz.jobs.progress`` record, whose
stages here are "starting", "nearest-neighbour graph" (done / total: rows searched), "layout"
(done / total: epochs), "trustworthiness", "stored") and stores the map through
``project_run``, exactly as ``dmlviz project`` would, so the map is cached in the run. The
files: ``dmlviz.runs.files``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dmlviz.jobs import progress
from dmlviz.jobs.lock import OsLock, held_elsewhere
from dmlviz.jobs.process import spawn_detached
from dmlviz.project.cache import project_run
from dmlviz.runs import Run, RunError, projection_file
from dmlviz.runs.files import PROJECTIONS, umap_lock_file, umap_log_file, umap_progress_file

TAKE_LOCK_S = 1.0  # how long the child tries for the lock (a page's probe may hold it an instant)


def prepare_maps(run: Run, split: str) -> str | None:
    """Give ``split`` of ``run`` a map to show now: when it has none, PCA is computed here (a few
    seconds at 200k points) and UMAP started in the background. Returns ``start_umap``'s
    answer when it was called, else None (a map was stored already).

    Raises ``RunError`` when the split has no embeddings or the run folder cannot be written.
    """
    if _stored(run, split, "umap") or _stored(run, split, "pca"):
        return None
    try:
        project_run(run, splits=(split,), methods=("pca",))
    except OSError as error:
        raise RunError(
            f"cannot write a map into {run.path} ({error}): run `dmlviz project {run.path} "
            f"--splits {split}` where the run folder is writable"
        ) from None
    return start_umap(run, split)


def start_umap(run: Run, split: str) -> str:
    """Start computing ``split``'s UMAP in a background process. Returns "stored" (a UMAP map
    exists), "running" (another process computes it: this call joins it) or "started".

    Raises ``RunError`` when the run folder cannot be written."""
    if _stored(run, split, "umap"):
        return "stored"
    if (umap_progress(run, split) or {}).get("state") == progress.RUNNING:
        return "running"
    try:
        (run.path / PROJECTIONS).mkdir(parents=True, exist_ok=True)
        progress.Progress(run.path / umap_progress_file(split)).announce()
        _spawn(run.path, split)
    except OSError as error:
        raise RunError(
            f"cannot start UMAP in {run.path} ({error}): run `dmlviz project {run.path} "
            f"--splits {split}` where the run folder is writable"
        ) from None
    return "started"


def umap_progress(run: Run, split: str) -> dict[str, Any] | None:
    """The progress of ``split``'s background UMAP (``dmlviz.jobs.progress.current``: a
    "running" record whose process is gone reads as "failed"), or None when none was started."""
    running = held_elsewhere(run.path / umap_lock_file(split))
    return progress.current(run.path / umap_progress_file(split), running)


def compute_umap(run: Run, split: str) -> bool:
    """The background process's work: take the lock, compute and store the UMAP map with
    progress, record the outcome. Returns False when another process holds the lock (nothing
    done), True when this one computed it. Raises what the computation raised (recorded)."""
    (run.path / PROJECTIONS).mkdir(parents=True, exist_ok=True)
    lock = OsLock(run.path / umap_lock_file(split), timeout=TAKE_LOCK_S)
    if not lock.acquire():
        return False
    job = progress.Progress(run.path / umap_progress_file(split))
    try:
        job.update("nearest-neighbour graph")

        def step(stage: str, done: int, total: int) -> None:
            stage = "trustworthiness" if stage == "layout" and done == total else stage
            job.update(stage, done, total)

        project_run(run, splits=(split,), methods=("umap",), progress=step)
        job.finish("stored")
        return True
    except BaseException as error:
        job.fail(error)
        raise
    finally:
        lock.release()


def _stored(run: Run, split: str, method: str) -> bool:
    """Whether ``split``'s ``method`` map is stored (its files exist; not read)."""
    stem = run.path / projection_file(split, method)
    return stem.exists() and stem.with_suffix(".json").exists()


def _spawn(run_path: Path, split: str) -> None:
    """Start ``compute_umap`` in a detached process (it outlives the dashboard's rerun)."""
    command = [sys.executable, "-m", "dmlviz.project.background", str(run_path), split]
    spawn_detached(command, Path(run_path) / umap_log_file(split))


def main(argv: list[str] | None = None) -> int:
    """``python -m dmlviz.project.background RUN SPLIT``: compute that split's UMAP map."""
    run_path, split = argv if argv is not None else sys.argv[1:]
    compute_umap(Run.load(run_path), split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
