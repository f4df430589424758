"""A background job's progress record: one JSON file, rewritten atomically as the job goes.

Record: ``state`` ("running", "done", "failed"), ``stage`` (what the job does now), ``done`` /
``total`` (how far through the stage, e.g. epochs), ``pid`` (None until the job's own process
writes it), ``started`` / ``updated`` (unix seconds), and ``seconds`` when done, ``error`` when
failed. ``current`` reads it by the liveness rule of ``dmlviz.jobs.process``: a "running" record
whose process is gone reads as "failed".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from dmlviz.jobs.process import alive
from dmlviz.runs.atomic import atomic_write_json

RUNNING, DONE, FAILED = "running", "done", "failed"
STARTING = "starting"  # the stage of a job whose process has not begun
START_S = 60.0  # a started job that has not written its own record after this long failed to start
STOPPED = "the computation stopped before it finished"


class Progress:
    """The progress record at ``path`` of a job this process runs (``announce``: one it starts)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.started = time.time()

    def announce(self) -> None:
        """Record the job as starting, before its process exists (so the record names no pid)."""
        self._write(RUNNING, STARTING, pid=None)

    def update(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Record that the job is at ``stage``, ``done`` of ``total`` steps through it."""
        self._write(RUNNING, stage, done, total)

    def finish(self, stage: str) -> None:
        """Record the job as done at ``stage``, with the seconds it took."""
        self._write(DONE, stage, seconds=round(time.time() - self.started, 1))

    def fail(self, error: BaseException) -> None:
        """Record the job as failed with ``error`` ("Type: message")."""
        self._write(FAILED, FAILED, error=f"{type(error).__name__}: {error}")

    def _write(self, state: str, stage: str, done: int = 0, total: int = 0, **extra: Any) -> None:
        atomic_write_json(
            self.path, record(state, stage, done, total, started=self.started, **extra)
        )


def record(state: str, stage: str, done: int = 0, total: int = 0, **extra: Any) -> dict[str, Any]:
    """A progress record (see the module); ``pid`` defaults to this process, ``started`` to now."""
    now = time.time()
    pid = extra.pop("pid", os.getpid())
    return {"state": state, "stage": stage, "done": done, "total": total, "pid": pid,
            "started": extra.pop("started", now), "updated": now, **extra}  # fmt: skip


def read(path: str | Path) -> dict[str, Any] | None:
    """The progress record at ``path`` as written (None when absent or unreadable)."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def current(path: str | Path, running: bool) -> dict[str, Any] | None:
    """The job's progress as it stands, None when none was started. ``running``: whether the job
    holds its lock now; while it does, a record it has not yet written reads as starting. A
    "running" record whose process is gone (or that never began within ``START_S``) reads as
    "failed" with the error ``STOPPED``."""
    found = read(path)
    if running:
        return (
            found
            if found is not None and found.get("state") == RUNNING
            else record(RUNNING, STARTING, pid=None)
        )
    if found is None or found.get("state") != RUNNING:
        return found
    pid = found.get("pid")
    if isinstance(pid, int) and alive(pid):
        return found  # a job that died unreaped is a zombie: ``alive`` counts it gone
    if pid is None and time.time() - float(found.get("updated", 0)) < START_S:
        return found  # just started: its process has not written its record yet
    return {**found, "state": FAILED, "error": STOPPED}
