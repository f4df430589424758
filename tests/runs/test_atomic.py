"""Atomic writes: file modes follow the umask, stale temps are cleaned, a full disk is named."""

import errno
import os
import shutil
import stat
import subprocess
import sys

import pytest

from dmlviz.jobs.lock import TrainingLock
from dmlviz.runs import DiskFullError, atomic_write_json, atomic_writer, remove_stale_temporaries


@pytest.fixture
def umask():
    def set_mask(mask):
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_mask
    os.umask(previous)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_json(tmp_path / "a.json", {"v": 1})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    lock = TrainingLock(tmp_path)  # a colleague resuming the run must be able to open it
    lock.acquire()
    lock.release()
    assert stat.S_IMODE((tmp_path / "train.lock").stat().st_mode) == mode


def test_the_next_write_removes_stale_temps_of_its_file_only(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".model.{dead}-abcdefgh.safetensors"
    other = tmp_path / f".labels.{dead}-abcdefgh.npz"
    busy = tmp_path / f".model.{alive}-zyxwvuts.safetensors"
    for path in (stale, other, busy):
        path.write_bytes(b"x" * 100)
    with atomic_writer(tmp_path / "model.safetensors") as tmp:
        tmp.write_bytes(b"weights")
    assert not stale.exists() and other.exists() and busy.exists()
    assert remove_stale_temporaries(tmp_path) == [other]
    assert sorted(p.name for p in tmp_path.iterdir()) == [busy.name, "model.safetensors"]


def test_a_full_disk_names_the_folder_and_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"v": 1})
    full = f"the disk holding {tmp_path} is full"
    with pytest.raises(DiskFullError, match=full) as info, atomic_writer(tmp_path / "a.json"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "a.json could not be written" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_write_error_without_errno_on_a_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    full = type(usage)(usage.total, usage.total, 0)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    with pytest.raises(DiskFullError, match="0 B free"), atomic_writer(tmp_path / "t.pt"):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
