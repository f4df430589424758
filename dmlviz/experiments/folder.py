"""An experiment folder and its lock: the files a sweep (or a tuning study) keeps beside its runs.

A sweep folder holds one run per combination and::

    sweep.json       the spec (dataset, losses, rates, seeds, ...)
    progress.jsonl   one JSON record per epoch and per run event (the noise lab reads it)
    folder.lock      who writes the folder: pid, its start time, a hand-over token (absent when
                     nobody does)
    .folder.flock    the OS file lock (``filelock``) held by that process while it lives
    .cancel/<run>    one empty file per run whose cancellation was requested
    runs.csv, summary.csv, summary.md   the reports (``dmlviz.experiments.reports``)
    experiment.json  a noise-lab experiment's spec, pid and command (``...experiments.launcher``)
    sweep.log        that experiment's output

The OS lock excludes a second writer and dies with its holder. ``folder.lock`` is kept for what an
OS lock cannot do: name the owner to another process (the dashboard stops a detached experiment
that outlived it by that pid) and cover the moment a launcher hands the folder to the process it
starts. Whether its process still lives is asked of ``dmlviz.jobs.process``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from dmlviz.jobs.lock import OsLock
from dmlviz.jobs.process import process_alive, start_time
from dmlviz.runs import Run, RunError, atomic_write_json, is_run
from dmlviz.runs.walk import STUDY_FILES, STUDY_RUN_FOLDERS

SPEC_FILE = "sweep.json"
PROGRESS_FILE = "progress.jsonl"
LOCK_FILE = "folder.lock"
HELD_FILE = ".folder.flock"
CANCEL_DIR = ".cancel"
RUNS_CSV = "runs.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
DIFFERENCES_CSV = "differences.csv"  # loss against loss with intervals (``differences.py``)
EXPERIMENT_FILE = "experiment.json"
LOG_FILE = "sweep.log"
PRESET_JSON = "preset.json"  # a tuning study's chosen setting (``dmlviz.experiments.tune``)
SWEEP_MARKERS = (SPEC_FILE, EXPERIMENT_FILE)  # a folder holding one of them is a sweep
STUDY_MARKERS = (*STUDY_FILES, *STUDY_RUN_FOLDERS, PRESET_JSON)  # ... a tuning study
LOCK_TOKEN_ENV = "DMLVIZ_SWEEP_LOCK_TOKEN"  # lets a launcher hand its lock to the sweep it starts
HANDOVER_S = 30.0  # how long a process given a token waits for its launcher to let the lock go


class FolderBusyError(ValueError):
    """Another live process holds a sweep folder's lock."""


def folder_kind(folder: str | Path) -> str:
    """What ``folder`` is: "absent", "file", "empty" (hidden entries and a lock aside), "run",
    "sweep" (``SWEEP_MARKERS``), "study" (``STUDY_MARKERS``) or "other"."""
    folder = Path(folder)
    if not folder.exists():
        return "absent"
    if not folder.is_dir():
        return "file"
    if is_run(folder):
        return "run"
    names = set(visible_entries(folder))
    if not names:
        return "empty"
    if names & set(SWEEP_MARKERS):
        return "sweep"
    if names & set(STUDY_MARKERS):
        return "study"
    return "other"


def visible_entries(folder: Path) -> list[str]:
    """The sorted names in ``folder`` other than hidden ones and ``LOCK_FILE``."""
    return sorted(n for n in os.listdir(folder) if not n.startswith(".") and n != LOCK_FILE)


def check_out(out: str | Path, kind: str) -> None:
    """Refuse an experiment folder ``out`` that holds something other than an experiment of
    ``kind`` ("sweep" or "study"): ``ValueError`` saying what it holds and to choose another
    ``--out``. An absent or empty folder, or one of the same kind, passes (whether it is the same
    sweep or study is checked by its owner). Reads only."""
    found = folder_kind(out)
    if found in ("absent", "empty", kind):
        return
    what = "a sweep" if kind == "sweep" else "a tuning study"
    if found == "file":
        raise ValueError(f"--out {out} is a file, not a folder: choose a folder path for {what}")
    raise ValueError(
        f"--out {out} holds {contents(out)}, not {what}: choose another --out (a new or empty "
        "folder)"
    )


def contents(folder: str | Path) -> str:
    """What ``folder`` holds, in words for a message (``folder_kind``): "a run (dmlviz train)",
    "a sweep (sweep.json)", "a tuning study (dmlviz tune)", "other files (a, b, c and 2 more)"."""
    found = folder_kind(folder)
    if found == "other":
        return f"other files ({_listed(visible_entries(Path(folder)))})"
    return {
        "run": "a run (dmlviz train)",
        "sweep": f"a sweep ({SPEC_FILE})",
        "study": "a tuning study (dmlviz tune)",
        "file": "a file",
    }.get(found, "nothing")


def make_folder(folder: str | Path) -> None:
    """Create ``folder`` (and its parents) when absent; ``ValueError`` naming it and the reason
    when it cannot be made (a read-only or virtual filesystem, a file in the way)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cannot create --out {folder}: {error.strerror or error}; choose a folder you can "
            "write to"
        ) from None


def _listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def read_lock(folder: str | Path) -> dict[str, Any] | None:
    """The lock record of ``folder`` (pid, pid_start, token, created), or None when unlocked."""
    path = Path(folder) / LOCK_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"pid": None, "corrupt": True}
    return record if isinstance(record, dict) else {"pid": None, "corrupt": True}


def lock_is_live(record: dict[str, Any] | None) -> bool:
    """Whether the process named by a lock record still runs (the same process, not a reused PID;
    the rule ``Run.writer_gone`` applies to a run's ``status.json``)."""
    if not record or not isinstance(record.get("pid"), int):
        return False
    return process_alive(record["pid"], record.get("pid_start")) is not False


class FolderLock:
    """An exclusive lock on a sweep folder, see the module docstring.

    ``acquire()`` takes the OS lock for this process and records it in ``folder.lock``; a record
    left by a dead process is stale and replaced. ``token`` lets a launcher take the lock first
    and hand it to the process it starts: ``acquire(pid=child)`` records the child, ``hand_over()``
    lets the OS lock go, and the child (given the same token) takes it under its own pid.
    """

    def __init__(self, folder: str | Path, token: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.token = token
        self._held = OsLock(self.folder / HELD_FILE, timeout=HANDOVER_S if token else 0)

    def acquire(self, pid: int | None = None) -> FolderLock:
        """Take the lock for ``pid`` (default: this process); raises ``FolderBusyError``, or
        ``ValueError`` when the folder cannot be made."""
        make_folder(self.folder)
        if pid is None and not self._held.acquire():
            raise self._busy(read_lock(self.folder))
        pid = os.getpid() if pid is None else pid
        owner = read_lock(self.folder)
        handed = owner is not None and self.token and owner.get("token") == self.token
        if owner is not None and not handed and lock_is_live(owner):
            self.hand_over()
            raise self._busy(owner)
        record = {"pid": pid, "pid_start": start_time(pid), "token": self.token,
                  "created": time.time()}  # fmt: skip
        atomic_write_json(self.path, record)
        return self

    def hand_over(self) -> None:
        """Let the OS lock go, keeping the record (the process it names takes the lock over)."""
        self._held.release()

    def release(self) -> None:
        """Remove the record if this process (or this token) still owns it; let the OS lock go
        (its file removed while still held, so a finished folder keeps no trace of it)."""
        owner = read_lock(self.folder)
        if owner is not None and (
            owner.get("pid") == os.getpid() or (self.token and owner.get("token") == self.token)
        ):
            self.path.unlink(missing_ok=True)
        self._held.release(remove=True)

    def _busy(self, owner: dict[str, Any] | None) -> FolderBusyError:
        pid = (owner or {}).get("pid")
        return FolderBusyError(
            f"{self.folder} is in use by process {pid} (see {self.path}); "
            "wait for it to finish, cancel it, or choose another folder"
        )

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- progress records -------------------------------------------------------------------------------


def append_progress(folder: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``progress.jsonl`` (a single ``write`` on an O_APPEND file, so
    lines from parallel workers never interleave)."""
    line = json.dumps({"time": time.time(), **record}, default=_plain) + "\n"
    fd = os.open(Path(folder) / PROGRESS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_progress(folder: str | Path) -> list[dict[str, Any]]:
    """Every record of ``progress.jsonl`` (a torn last line is skipped); empty when absent."""
    path = Path(folder) / PROGRESS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# -- cancel requests ----------------------------------------------------------------------------------


def request_cancel(folder: str | Path, name: str) -> None:
    """Ask the sweep writing ``folder`` to cancel run ``name`` (it checks between epochs)."""
    cancel_dir = Path(folder) / CANCEL_DIR
    cancel_dir.mkdir(parents=True, exist_ok=True)
    (cancel_dir / name).touch()


def cancel_requested(folder: str | Path, name: str) -> bool:
    """Whether cancelling run ``name`` was requested."""
    return (Path(folder) / CANCEL_DIR / name).exists()


def clear_cancel_requests(folder: str | Path) -> None:
    """Forget every cancel request (a resumed experiment trains its cancelled runs again)."""
    cancel_dir = Path(folder) / CANCEL_DIR
    if cancel_dir.is_dir():
        for marker in cancel_dir.iterdir():
            marker.unlink(missing_ok=True)


def mark_cancelled(path: str | Path) -> None:
    """Mark the unfinished run at ``path`` ``cancelled``, keeping its epoch count (a no-op for a
    run that never started or that finished)."""
    if not is_run(path):
        return
    try:
        run = Run.load(path)
    except RunError:
        return
    status = run.status()
    if status.get("state") != "finished":
        run.set_status("cancelled", **{k: v for k, v in status.items() if k in ("epoch", "epochs")})


def finished_run(path: str | Path) -> Run | None:
    """The run at ``path`` if its training finished, else None."""
    if not is_run(path):
        return None
    try:
        run = Run.load(path)
    except RunError:
        return None
    return run if run.status().get("state") == "finished" else None


def evaluated(run: Run) -> bool:
    """Whether ``run`` has its test metrics and its neighbour consistency."""
    return run.eval_metrics("test") is not None and run.consistency() is not None
