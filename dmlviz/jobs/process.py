"""Processes: whether one still runs, starting one detached, stopping one with its children.

Every record that names a process (a run's ``status.json``, a sweep folder's ``folder.lock``, a
background job's progress, an atomic write's temp file) is judged by ``process_alive``: a zombie
counts as gone, and a start time tells a reused pid from the process that wrote the record.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

SAME_START_S = 1.0  # start times this close are one process (psutil rounds them)
KILL_WAIT_S = 5.0  # how long a SIGKILLed process may take to go


def process_alive(pid: int, started: float | None = None) -> bool | None:
    """Whether process ``pid`` still runs and, with ``started`` (its ``psutil`` start time, unix
    time), is the same process and not a later one given the same pid; None when that cannot be
    told (no permission). A zombie counts as gone unless other threads of it still run."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE and process.num_threads() <= 1:
            return False
        now = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return None
    return not isinstance(started, (int, float)) or abs(now - started) <= SAME_START_S


def alive(pid: int) -> bool:
    """``process_alive(pid)``, with "cannot tell" counted as running: whatever waits for a
    process, or keeps its files, must not take a live one for dead."""
    return process_alive(pid) is not False


def start_time(pid: int) -> float | None:
    """Process ``pid``'s start time (unix time, ``psutil``), to tell a reused pid from the
    original; None when there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def spawn_detached(
    command: Sequence[str], log: str | Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start ``command`` in a session of its own, so it outlives the process that starts it
    (a dashboard's rerun, a Ctrl-C in its terminal); its output is appended to ``log`` and its
    stdin is closed. ``env`` replaces the environment when given."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=True,
        )


def wait(pid: int, timeout: float | None = None) -> int | None:
    """Wait for process ``pid`` (not a child of this one) to end; its exit code, or None when
    unknown, timed out or there is no such process."""
    try:
        return psutil.Process(pid).wait(timeout)
    except (psutil.TimeoutExpired, psutil.NoSuchProcess):
        return None


def stop_tree(pid: int, timeout: float) -> None:
    """SIGTERM process ``pid`` and its descendants (its whole process group when it leads one,
    which also reaches workers started after this call), then SIGKILL what is left after
    ``timeout`` seconds; returns once they are gone."""
    try:
        leader = psutil.Process(pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            for process in tree:
                process.terminate()
    _, left = psutil.wait_procs(tree, timeout=timeout)
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=KILL_WAIT_S)
