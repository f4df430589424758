"""Jobs: the one liveness rule, detached children, OS locks and a background job's progress."""

import os
import subprocess
import sys
import time

import psutil
import pytest
from shared_files import HANG_GUARD_S

from dmlviz.jobs import progress
from dmlviz.jobs.lock import OsLock, held_elsewhere
from dmlviz.jobs.process import (
    alive,
    process_alive,
    spawn_detached,
    start_time,
    stop_tree,
    wait,
)
from dmlviz.runs import remove_stale_temporaries


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def zombie():
    """A child that has exited but was not waited for (what a dashboard's crashed child is)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + HANG_GUARD_S
    while time.time() < deadline and psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    yield child.pid
    child.wait()


def test_a_live_process_is_alive_and_a_gone_one_is_not():
    assert process_alive(os.getpid()) is True and alive(os.getpid())
    assert process_alive(os.getpid(), start_time(os.getpid())) is True
    dead = _dead_pid()
    assert process_alive(dead) is False and not alive(dead) and start_time(dead) is None


def test_a_reused_pid_is_another_process():
    assert process_alive(os.getpid(), started=start_time(os.getpid()) - 3600) is False


def test_a_zombie_is_gone(zombie):
    assert process_alive(zombie) is False and not alive(zombie)


def test_a_temp_file_of_a_zombie_writer_is_stale(tmp_path, zombie):
    stale = tmp_path / f".metrics.{zombie}-abcdefgh.json"
    stale.write_text("{")
    assert remove_stale_temporaries(tmp_path) == [stale]


def test_a_detached_child_has_its_own_session_and_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("before\n")
    code = "import os, sys; print(os.getsid(0), sys.stdin.read() == '', flush=True)"
    child = spawn_detached([sys.executable, "-c", code], log)
    assert child.wait(HANG_GUARD_S) == 0
    assert log.read_text() == f"before\n{child.pid} True\n"


def test_stop_tree_stops_a_child_and_what_it_started(tmp_path):
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('up', flush=True); time.sleep(60)"
    )
    leader = spawn_detached([sys.executable, "-c", code], tmp_path / "tree.log")
    deadline = time.time() + HANG_GUARD_S
    while time.time() < deadline and "up" not in (tmp_path / "tree.log").read_text():
        time.sleep(0.05)
    worker = psutil.Process(leader.pid).children()[0]
    stop_tree(leader.pid, timeout=HANG_GUARD_S)
    assert leader.wait(HANG_GUARD_S) is not None
    assert not alive(worker.pid)
    assert wait(worker.pid, timeout=1) is None  # gone: nothing to wait for


def test_an_os_lock_excludes_a_second_holder_and_can_leave_no_file(tmp_path):
    path = tmp_path / "job.lock"
    assert not held_elsewhere(path)  # no file: nobody holds it
    first, second = OsLock(path), OsLock(path)
    assert first.acquire() and first.held and first.acquire()  # taking it twice is a no-op
    assert not second.acquire() and held_elsewhere(path)
    first.release()
    assert not held_elsewhere(path) and path.exists()
    assert second.acquire()
    second.release(remove=True)
    assert not path.exists() and not second.held


def test_an_os_lock_is_held_by_another_process(tmp_path):
    path = tmp_path / "job.lock"
    code = (
        "import sys, time; from dmlviz.jobs.lock import OsLock; "
        f"lock = OsLock({str(path)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert held_elsewhere(path) and not OsLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert OsLock(path).acquire()  # the OS let it go with its holder


def test_progress_records_stages_and_the_end(tmp_path):
    path = tmp_path / "job.progress.json"
    job = progress.Progress(path)
    job.announce()
    assert progress.read(path)["stage"] == "starting" and progress.read(path)["pid"] is None
    job.update("layout", 3, 10)
    record = progress.current(path, running=False)
    assert record["state"] == "running" and (record["done"], record["total"]) == (3, 10)
    assert record["pid"] == os.getpid() and record["started"] == job.started
    job.finish("stored")
    assert progress.read(path)["state"] == "done" and progress.read(path)["seconds"] >= 0
    job.fail(ValueError("no embeddings"))
    assert progress.read(path)["error"] == "ValueError: no embeddings"


def test_progress_of_a_gone_job_reads_as_failed(tmp_path, zombie):
    path = tmp_path / "job.progress.json"
    assert progress.current(path, running=False) is None
    assert progress.current(path, running=True)["stage"] == "starting"  # locked, not yet written
    for pid in (_dead_pid(), zombie):
        progress.atomic_write_json(path, progress.record("running", "layout", pid=pid))
        record = progress.current(path, running=False)
        assert record["state"] == "failed" and record["error"] == progress.STOPPED
    never = progress.record("running", "starting", pid=None)
    progress.atomic_write_json(path, {**never, "updated": time.time() - progress.START_S - 1})
    assert progress.current(path, running=False)["state"] == "failed"
    progress.atomic_write_json(path, never)
    assert progress.current(path, running=False)["state"] == "running"  # just started
