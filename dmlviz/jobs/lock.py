"""Locks held by one process while it lives: an OS file lock (``filelock``), which the OS lets go
however its holder ends.

``OsLock`` is the one way to take such a lock, ``held_elsewhere`` the one way to ask whether
another process holds it. ``TrainingLock`` is a run's ``train.lock``; a sweep folder's lock
(``dmlviz.experiments.folder.FolderLock``) and a background UMAP's lock
(``dmlviz.project.background``) are made of an ``OsLock`` too.
"""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock, Timeout

from dmlviz.runs.atomic import file_mode
from dmlviz.runs.run import LOCK, STATUS, RunError


class OsLock:
    """The OS lock on the file ``path`` (created when taken, with a plain file's mode), taken
    waiting up to ``timeout`` seconds."""

    def __init__(self, path: str | Path, timeout: float = 0.0):
        self.path = Path(path)
        self.timeout = timeout
        self._lock: FileLock | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock is not None

    def acquire(self) -> bool:
        """Take the lock; False when another process (or another ``OsLock`` of the same file)
        held it for ``timeout`` seconds. True at once when this object holds it already."""
        if self._lock is None:
            lock = FileLock(self.path, timeout=self.timeout, mode=file_mode())
            try:
                lock.acquire()
            except Timeout:
                return False
            self._lock = lock
        return True

    def release(self, remove: bool = False) -> None:
        """Let the lock go (nothing when it is not held); ``remove`` deletes its file first,
        while it is still held, so that no trace of it stays behind."""
        if self._lock is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None


def held_elsewhere(path: str | Path) -> bool:
    """Whether some other holder (another process, or another ``OsLock`` here) holds the OS lock
    on ``path``. False when there is no such file, or one this user cannot open (someone else's,
    which nothing here could take either)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with FileLock(path, timeout=0):
            return False
    except Timeout:
        return True
    except OSError:
        return False


class TrainingLock:
    """``train.lock`` in a run folder, held by the one process that trains the run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = OsLock(self.path / LOCK)

    def acquire(self) -> None:
        """Take the lock (creating the folder); raises ``RunError`` when another process holds it."""
        if self._lock.held:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if not self._lock.acquire():
            holder = self.holder()
            named = f" ({holder})" if holder and holder != "a process" else ""
            raise RunError(
                f"{self.path} is being trained by another process{named}: wait for it "
                "to finish or stop it (two trainings of one run would overwrite each other)"
            )

    def release(self) -> None:
        """Let the lock go (nothing when it is not held)."""
        self._lock.release()

    def holder(self) -> str | None:
        """Who trains the run now, from its status.json ("pid 123 on host h", or "a process"
        when it does not say); None when no other process holds the lock (or that cannot be
        told)."""
        if self._lock.held or not held_elsewhere(self._lock.path):
            return None
        try:
            status = json.loads((self.path / STATUS).read_text())
        except (OSError, ValueError):
            status = {}
        pid = status.get("pid") if isinstance(status, dict) else None
        if not isinstance(pid, int):
            return "a process"
        host = status.get("host")
        return f"pid {pid}" + (f" on {host}" if host else "")
