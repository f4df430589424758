"""A split's UMAP map computed in a background process, with progress a page can poll.

UMAP of 200k points takes minutes, so the dashboard shows PCA at once (``prepare_maps``) and
leaves UMAP to a child process (``start_umap``: ``python -m dmlviz.project.background RUN
SPLIT``). The child holds ``projections/.<split>_umap.lock`` (``filelock``: one computation per
run and split, released by the OS however the child ends), writes its progress to
``projections/<split>_umap.progress.json`` (atomically) and stores the map through
``project_run``, exactly as ``dmlviz project`` would, so the map is cached in the run.

Progress record: ``state`` ("running", "done", "failed"), ``stage`` (what it is doing),
``done`` / ``total`` (of the stage: rows searched, layout epochs), ``pid``, ``started`` /
``updated`` (Unix seconds),
``seconds`` (when done), ``error`` (when failed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dmlviz.project.cache import project_run
from dmlviz.runs import Run, RunError, atomic_write_json, projection_file
from dmlviz.runs.run import process_alive

RUNNING, DONE, FAILED = "running", "done", "failed"
START_S = 60.0  # a started child that has not taken its lock after this long has failed to start
TAKE_LOCK_S = 1.0  # how long the child tries for the lock (a page's probe may hold it an instant)


def progress_file(split: str) -> str:
    """The progress record of ``split``'s background UMAP, relative to the run folder."""
    return f"projections/{split}_umap.progress.json"


def lock_file(split: str) -> str:
    """The lock held while ``split``'s UMAP is computed, relative to the run folder."""
    return f"projections/.{split}_umap.lock"


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
    if (umap_progress(run, split) or {}).get("state") == RUNNING:
        return "running"
    try:
        (run.path / "projections").mkdir(parents=True, exist_ok=True)
        atomic_write_json(run.path / progress_file(split), _record(RUNNING, "starting", pid=None))
        _spawn(run.path, split)
    except OSError as error:
        raise RunError(
            f"cannot start UMAP in {run.path} ({error}): run `dmlviz project {run.path} "
            f"--splits {split}` where the run folder is writable"
        ) from None
    return "started"


def umap_progress(run: Run, split: str) -> dict[str, Any] | None:
    """The progress of ``split``'s background UMAP (see the module), or None when none was
    started. A "running" record whose process is gone reads as "failed"."""
    record = umap_progress_record(run, split)
    if _lock_held(run, split):
        running = record is not None and record.get("state") == RUNNING
        return record if running else _record(RUNNING, "starting", pid=None)
    if record is None or record.get("state") != RUNNING:
        return record
    pid = record.get("pid")
    if isinstance(pid, int) and process_alive(pid) is not False:
        return record  # a child that died unreaped is a zombie: process_alive counts it gone
    if pid is None and time.time() - float(record.get("updated", 0)) < START_S:
        return record  # just started: the child has not taken the lock yet
    return {**record, "state": FAILED, "error": "the computation stopped before it finished"}


def umap_progress_record(run: Run, split: str) -> dict[str, Any] | None:
    """The stored progress record as written (None when absent or unreadable)."""
    try:
        record = json.loads((run.path / progress_file(split)).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def compute_umap(run: Run, split: str) -> bool:
    """The background process's work: take the lock, compute and store the UMAP map with
    progress, record the outcome. Returns False when another process holds the lock (nothing
    done), True when this one computed it. Raises what the computation raised (recorded)."""
    from filelock import FileLock, Timeout

    (run.path / "projections").mkdir(parents=True, exist_ok=True)
    lock = FileLock(run.path / lock_file(split), timeout=TAKE_LOCK_S)
    try:
        lock.acquire()
    except Timeout:
        return False
    path = run.path / progress_file(split)
    started = time.time()
    try:
        atomic_write_json(path, _record(RUNNING, "nearest-neighbour graph", started=started))

        def step(stage: str, done: int, total: int) -> None:
            stage = "trustworthiness" if stage == "layout" and done == total else stage
            atomic_write_json(path, _record(RUNNING, stage, done, total, started=started))

        project_run(run, splits=(split,), methods=("umap",), progress=step)
        seconds = round(time.time() - started, 1)
        atomic_write_json(path, _record(DONE, "stored", started=started, seconds=seconds))
        return True
    except BaseException as error:
        failure = f"{type(error).__name__}: {error}"
        atomic_write_json(path, _record(FAILED, "failed", started=started, error=failure))
        raise
    finally:
        lock.release()


def _record(state: str, stage: str, done: int = 0, total: int = 0, **extra: Any) -> dict:
    now = time.time()
    pid = extra.pop("pid", os.getpid())
    return {"state": state, "stage": stage, "done": done, "total": total, "pid": pid,
            "started": extra.pop("started", now), "updated": now, **extra}  # fmt: skip


def _stored(run: Run, split: str, method: str) -> bool:
    """Whether ``split``'s ``method`` map is stored (its files exist; not read)."""
    stem = run.path / projection_file(split, method)
    return stem.exists() and stem.with_suffix(".json").exists()


def _lock_held(run: Run, split: str) -> bool:
    """Whether a process (this one included) holds ``split``'s UMAP lock."""
    from filelock import FileLock, Timeout

    if not (run.path / lock_file(split)).exists():
        return False
    probe = FileLock(run.path / lock_file(split), timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False


def _spawn(run_path: Path, split: str) -> None:
    """Start ``compute_umap`` in a detached process (it outlives the dashboard's rerun)."""
    with open(Path(run_path) / "projections" / f"{split}_umap.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "dmlviz.project.background", str(run_path), split],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m dmlviz.project.background RUN SPLIT``: compute that split's UMAP map."""
    run_path, split = argv if argv is not None else sys.argv[1:]
    compute_umap(Run.load(run_path), split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
