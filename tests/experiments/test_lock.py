"""The folder lock: one writer per sweep folder; a lock left by a dead process is cleared."""

import json
import os
import subprocess
import sys

import pytest

from dmlviz.experiments.folder import (
    LOCK_FILE,
    FolderBusyError,
    FolderLock,
    lock_is_live,
    read_lock,
)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_excludes_a_second_owner_and_is_released(tmp_path):
    with FolderLock(tmp_path):
        record = read_lock(tmp_path)
        assert record["pid"] == os.getpid() and lock_is_live(record)
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            lock = json.loads((tmp_path / LOCK_FILE).read_text())
            (tmp_path / LOCK_FILE).write_text(
                json.dumps({**lock, "pid": sleeper.pid, "pid_start": None})
            )
            with pytest.raises(FolderBusyError, match=f"in use by process {sleeper.pid}"):
                FolderLock(tmp_path).acquire()
        finally:
            sleeper.kill()
            sleeper.wait()
    assert read_lock(tmp_path) is not None  # not ours any more: left for its owner
    FolderLock(tmp_path).acquire().release()  # the sleeper is dead: stale, cleared
    assert read_lock(tmp_path) is None


def test_stale_lock_of_a_dead_process_is_cleared(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": _dead_pid(), "created": 0}))
    assert not lock_is_live(read_lock(tmp_path))
    lock = FolderLock(tmp_path).acquire()
    assert read_lock(tmp_path)["pid"] == os.getpid()
    lock.release()


def test_reused_pid_with_another_start_time_is_stale(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "pid_start": 1}))
    if read_lock(tmp_path) and lock_is_live(read_lock(tmp_path)):
        pytest.skip("no /proc start times here")
    FolderLock(tmp_path).acquire().release()


def test_corrupt_lock_is_treated_as_stale(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{not json")
    FolderLock(tmp_path).acquire().release()
    assert read_lock(tmp_path) is None


def test_a_token_hands_the_lock_to_another_process(tmp_path):
    FolderLock(tmp_path, token="abc").acquire(pid=_dead_pid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        FolderLock(tmp_path, token="abc").acquire(pid=child.pid)
        assert read_lock(tmp_path)["pid"] == child.pid
        with pytest.raises(FolderBusyError):
            FolderLock(tmp_path, token="other").acquire()
    finally:
        child.kill()
        child.wait()


def test_the_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from dmlviz.experiments.folder import FolderLock; "
         f"FolderLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"in use by process {holder.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the OS lets its file lock go
        holder.wait()
    assert read_lock(tmp_path)["pid"] == holder.pid  # the record stays, naming a dead process
    FolderLock(tmp_path).acquire().release()
    assert read_lock(tmp_path) is None
