"""The noise lab's launcher: start a sweep as a detached background process, cancel it, resume it.

An experiment is a sweep folder below the dashboard's runs folder, run by ``python -m dmlviz sweep
--spec <folder>/experiment.json`` (the same code path as the command line) in its own session,
plus ``experiment.json`` (the spec, the process ID, the command) and ``sweep.log`` (its output).
It outlives the dashboard that started it; a restarted dashboard finds it by the pid in the
folder's lock (``dmlviz.experiments.folder``) and stops it (``dmlviz.jobs.process.stop_tree``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmlviz.experiments.folder import (
    EXPERIMENT_FILE,
    HELD_FILE,
    LOCK_FILE,
    LOCK_TOKEN_ENV,
    LOG_FILE,
    FolderBusyError,
    FolderLock,
    append_progress,
    clear_cancel_requests,
    contents,
    folder_kind,
    lock_is_live,
    mark_cancelled,
    read_lock,
    read_progress,
    request_cancel,
)
from dmlviz.experiments.spec import experiment_problems, is_name
from dmlviz.experiments.state import experiment_state, read_experiment
from dmlviz.jobs import process as processes
from dmlviz.runs import atomic_write_json, run_folders

_PROCESSES: dict[str, subprocess.Popen] = {}  # experiments this process started, to reap them


@dataclass
class Experiment:
    """A started experiment: its folder, spec and process (``process`` is None when it was
    started by another process, e.g. before a dashboard restart)."""

    folder: Path
    spec: dict[str, Any]
    pid: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    def state(self) -> dict[str, Any]:
        """``experiment_state`` of this experiment."""
        return experiment_state(self.folder)

    def running(self) -> bool:
        """Whether the sweep process still runs."""
        if self.process is not None:
            return self.process.poll() is None
        return processes.alive(self.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end; returns its exit code (None if unknown or timed out)."""
        if self.process is not None:
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        return processes.wait(self.pid, timeout)

    def cancel(self, run: str | None = None) -> None:
        """``cancel_experiment`` for this experiment."""
        cancel_experiment(self.folder, run)


def start_experiment(spec: dict[str, Any], runs_dir: str | Path) -> Experiment:
    """Start ``python -m dmlviz sweep`` for ``spec`` into ``runs_dir/<name>`` in the background.

    ``name`` defaults to ``lab-<dataset>-<date-time>``. The sweep runs in its own process group
    (so cancelling stops its workers too), writes ``sweep.log`` and ``progress.jsonl``, and holds
    the folder's lock. Raises ``FolderBusyError`` when another live process writes the folder,
    ``ValueError`` listing the spec's problems or when the experiment already exists (resume it
    with ``resume_experiment``).
    """
    problems = experiment_problems(spec)
    if problems:
        raise ValueError("; ".join(problems))
    runs_dir = Path(runs_dir)
    name = spec.get("name") or f"lab-{spec['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = runs_dir / name
    owner = read_lock(folder)
    if lock_is_live(owner):
        raise FolderBusyError(
            f"{folder} is in use by process {owner['pid']}; wait for it, cancel it, or choose "
            "another experiment name"
        )
    if (folder / EXPERIMENT_FILE).exists():
        raise ValueError(
            f"experiment {name!r} already exists in {runs_dir}; resume it or choose another name"
        )
    if folder_kind(folder) not in ("absent", "empty"):
        raise ValueError(
            f"{folder} already holds {contents(folder)}; choose another experiment name"
        )
    return _launch(folder, {**spec, "name": name})


def resume_experiment(folder: str | Path) -> Experiment:
    """Start a stopped or cancelled experiment again: finished runs are kept, cancelled and
    interrupted ones resume from their last epoch, queued ones start. ``FolderBusyError`` when
    it is still running."""
    folder = Path(folder)
    record = read_experiment(folder)
    if record is None:
        raise ValueError(f"{folder} is not a noise-lab experiment (no {EXPERIMENT_FILE})")
    return _launch(folder, record["spec"])


def _launch(folder: Path, spec: dict[str, Any]) -> Experiment:
    """Take the folder's lock, write the spec, start the sweep process and hand the lock to it."""
    token = secrets.token_hex(16)
    lock = FolderLock(folder, token=token).acquire()
    try:
        clear_cancel_requests(folder)
        record_path = folder / EXPERIMENT_FILE
        command = [sys.executable, "-m", "dmlviz", "sweep", "--spec", str(record_path),
                   "--out", str(folder)]  # fmt: skip
        record = {
            "spec": spec,
            "command": command,
            "created": (read_experiment(folder) or {}).get("created", time.time()),
            "started": time.time(),
            "pid": None,
            "cancelled": False,
        }
        atomic_write_json(record_path, record)
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            LOCK_TOKEN_ENV: token,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [package_parent, os.environ.get("PYTHONPATH")])
            ),
            "PYTHONUNBUFFERED": "1",
        }
        process = processes.spawn_detached(command, folder / LOG_FILE, env)
    except BaseException:
        lock.release()
        raise
    lock.acquire(pid=process.pid)
    lock.hand_over()
    record["pid"] = process.pid
    atomic_write_json(folder / EXPERIMENT_FILE, record)
    _PROCESSES[str(folder.resolve())] = process
    return Experiment(folder=folder, spec=spec, pid=process.pid, process=process)


def cancel_experiment(folder: str | Path, run: str | None = None, timeout: float = 20.0) -> None:
    """Cancel a whole experiment (``run`` None) or one of its runs.

    One run: it stops at the trainer's next check (or is skipped while queued) and is marked
    ``cancelled``; the sweep goes on with the others. The whole experiment: its process group is
    sent SIGTERM (SIGKILL after ``timeout`` seconds), every unfinished run is marked
    ``cancelled`` and the lock is cleared. Finished runs are kept; cancelled runs resume with
    ``resume_experiment``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"experiment folder {folder} does not exist")
    if run is not None and not is_name(run):
        raise ValueError(f"{run!r} is not a run name")
    alive_pid = _live_owner(folder)
    if run is not None:
        request_cancel(folder, run)
        if alive_pid is None:
            mark_cancelled(folder / run)
        return
    if alive_pid is None and _last_sweep_event(folder) == "sweep_finished":
        return  # nothing left to cancel
    if alive_pid is not None:
        processes.stop_tree(alive_pid, timeout)
        _reap()
    for path in run_folders(folder):
        mark_cancelled(path)
    record = read_experiment(folder)
    if record is not None:
        atomic_write_json(folder / EXPERIMENT_FILE, {**record, "cancelled": True, "pid": None})
    lock = read_lock(folder)
    if lock is not None and not lock_is_live(lock):
        (folder / LOCK_FILE).unlink(missing_ok=True)
        (folder / HELD_FILE).unlink(missing_ok=True)  # its holder is gone
    append_progress(folder, {"event": "sweep_cancelled"})


def _last_sweep_event(folder: Path) -> str | None:
    """The last sweep-level event of ``progress.jsonl`` (sweep_started, sweep_finished, ...)."""
    events = [r.get("event") for r in read_progress(folder)]
    events = [e for e in events if e and e.startswith("sweep_")]
    return events[-1] if events else None


def _live_owner(folder: Path) -> int | None:
    """The PID of the live process working in ``folder``, or None."""
    lock = read_lock(folder)
    if lock_is_live(lock):
        return int(lock["pid"])
    record = read_experiment(folder) or {}
    pid = record.get("pid")
    _reap()
    return pid if isinstance(pid, int) and processes.alive(pid) else None


def _reap() -> None:
    """Collect the exit status of the sweeps this process started that ended (no zombies)."""
    for key, process in list(_PROCESSES.items()):
        if process.poll() is not None:
            del _PROCESSES[key]


def list_experiments(runs_dir: str | Path) -> list[Path]:
    """Every experiment folder directly below ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if (p / EXPERIMENT_FILE).exists()]
    return sorted(found, key=lambda p: (read_experiment(p) or {}).get("created", 0), reverse=True)
