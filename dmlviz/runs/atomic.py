"""Atomic file writes: write a temp file beside the target, then rename it into place.

A crash or Ctrl-C between the two steps leaves the old file (or none), never a half-written one.
The temp file is named ``.<stem>.<pid>-<random><suffix>``: a temp whose writer process is gone
(``dmlviz.jobs.process.alive``: a zombie is gone too) is stale (a kill -9 mid-write) and is
removed by the next write of the same file, or by ``remove_stale_temporaries``. Files get the
mode a plain ``open`` would give them (0666 less the umask). A write that fails because the
disk is full raises ``DiskFullError``.
"""

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dmlviz.jobs.process import alive

FULL_DISK_BYTES = 1 << 20  # a write that failed with less than this free failed for want of space
_TEMP_NAME = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)-[a-z0-9_]{8}(?P<suffix>(\.[^.]*)?)$")


class DiskFullError(OSError):
    """A write failed because the disk was full; the message names the folder and the file."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success rename it onto ``path``.

    The temp name keeps the target's suffix so libraries that infer the format from it
    (numpy, pandas, safetensors) behave as they would on the real name. Stale temps of the same
    file are removed first. Raises ``DiskFullError`` when the write fails on a full disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.{os.getpid()}-", suffix=path.suffix
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; a shared runs folder needs more
        os.replace(tmp, path)
    except Exception as error:
        if _disk_full(error, path.parent):
            raise _disk_full_error(path) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the temp files in ``folder`` (of the file ``name`` only, when given) whose writer
    process is gone; returns the removed paths."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if name is not None and f"{match['stem']}{match['suffix']}" != name:
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or alive(pid):
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN written as null)."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=2, sort_keys=True) + "\n")


def _json_safe(obj: Any) -> Any:
    """Turn numpy scalars/arrays and non-finite floats into plain JSON values."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0777 less the process's umask."""
    return 0o777 & ~_umask()


def make_parents(path: str | Path, option: str = "--out") -> list[Path]:
    """Create the missing folders above ``path``; returns the ones made, outermost first (for
    ``remove_made``). Raises ``ValueError`` naming ``option`` when they cannot be made (a file in
    the way, no permission, a read-only or virtual file system such as /proc)."""
    parent = Path(path).absolute().parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"argument {option}: {parent} is a file, so {path} cannot be made")
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
    except OSError as error:
        remove_made(made)
        raise ValueError(
            f"argument {option}: cannot make {path} ({error.strerror or error}): choose a folder "
            "you can write to"
        ) from None
    return made


def check_writable(folder: str | Path, option: str = "--out") -> None:
    """Raise ``ValueError`` naming ``option`` unless a file can be made in ``folder`` (tried:
    permissions alone do not tell, e.g. for root on /proc)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".dmlviz-write-test-")
    except OSError as error:
        raise ValueError(
            f"argument {option}: cannot write to {folder} ({error.strerror or error}): choose a "
            "folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(name)


def remove_made(folders: list[Path]) -> None:
    """Remove the folders ``make_parents`` made (innermost first) where they are still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


def staging_folder(out: str | Path, verb: str, option: str = "--out") -> tuple[Path, list[Path]]:
    """A new, empty folder ``.<name>.<verb>-<pid>-<random>`` beside ``out`` to write into before
    one rename puts it in place, with a plain folder's mode, and the folders above ``out`` made
    for it (``make_parents``: for ``remove_made`` when the write fails). Staging folders of
    ``out`` left by a process that is gone (killed mid-write) are removed first. Raises
    ``ValueError`` naming ``option``, leaving nothing made, when the folder cannot be written."""
    out = Path(out)
    made = make_parents(out, option)
    prefix = f".{out.name}.{verb}-"
    try:
        entries = list(os.scandir(out.parent))
    except OSError:
        entries = []
    for entry in entries:
        pid = entry.name.removeprefix(prefix).split("-")[0]
        if entry.name.startswith(prefix) and pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
    try:
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{prefix}{os.getpid()}-"))
    except OSError as error:
        remove_made(made)
        raise ValueError(
            f"argument {option}: cannot write to {out.parent} ({error.strerror or error}): "
            "choose a folder you can write to"
        ) from None
    os.chmod(staging, dir_mode())  # mkdtemp makes 0700; a shared runs folder needs more
    return staging, made


def file_mode() -> int:
    """The mode ``open`` gives a new file: 0666 less the process's umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask (read from /proc where it can be, so no other thread sees it change)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write failed because ``folder``'s disk is full (libraries such as torch
    report it without an errno, so a nearly empty disk counts too)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


def _disk_full_error(path: Path) -> DiskFullError:
    usage = shutil.disk_usage(path.parent)
    message = (
        f"the disk holding {path.parent} is full ({_size(usage.free)} free of "
        f"{_size(usage.total)}), so {path.name} could not be written: free some space there"
    )
    return DiskFullError(errno.ENOSPC, message, str(path))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
