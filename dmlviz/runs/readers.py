"""Read what a user brings to ``dmlviz import``: embeddings, labels, image paths, an OML CSV.

Each reader returns plain numpy arrays (or a frame for the CSV) and raises ``ImportInputError``
naming the file and what is wrong with it; nothing here writes anything.

* embeddings: ``.npy``, ``.npz``, ``.safetensors``, ``.pt`` (``weights_only=True``), ``.parquet``
  (one list or array column); a file with several arrays must name one ``embeddings``.
* labels: a ``.npy`` array (integers or strings), or a text/CSV file with one label per line or a
  ``label`` column.
* image paths: a text file with one path per line, relative to that file's folder or absolute.
* an Open Metric Learning CSV: ``label``, ``path``, ``split`` (train / validation),
  ``is_query``, ``is_gallery``, optional ``category`` and the crop box ``x_1, x_2, y_1, y_2``,
  read by the ``csv`` dataset's reader (``dmlviz.data.table``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

EMBEDDING_SUFFIXES = (".npy", ".npz", ".safetensors", ".pt", ".parquet")
EMBEDDINGS_KEY = "embeddings"  # the array to take from a file that holds several
ROW_BLOCK = 65_536  # rows normalised or hashed at a time (a 64 MiB block at 256 float32 columns)


class ImportInputError(ValueError):
    """A file given to ``dmlviz import`` cannot be used; the message names it and the problem."""


# -- embeddings -----------------------------------------------------------------------------------


def read_embeddings(path: str | Path) -> np.ndarray:
    """The ``(n, d)`` float32 embeddings in ``path`` (format from its suffix, one of
    ``EMBEDDING_SUFFIXES``). Raises ``ImportInputError`` for a missing, empty, misnamed or
    malformed file, an array that is not 2-D, not numeric, or holds NaN / infinite rows."""
    path = _existing(path)
    suffix = path.suffix.lower()
    readers = {
        ".npy": _npy,
        ".npz": _npz,
        ".safetensors": _safetensors,
        ".pt": _torch,
        ".parquet": _parquet,
    }
    if suffix not in readers:
        raise ImportInputError(
            f"{path}: unknown embeddings format {suffix or '(no suffix)'}; "
            f"use one of {', '.join(EMBEDDING_SUFFIXES)}"
        )
    try:
        array = readers[suffix](path)
    except ImportInputError:
        raise
    except Exception as error:  # each library raises its own types for a file it cannot parse
        raise ImportInputError(
            f"{path} is not a valid {suffix} file ({type(error).__name__}: {error})"
        ) from None
    return check_embeddings(array, path)


def check_embeddings(array: np.ndarray, source: str | Path) -> np.ndarray:
    """``array`` as C-contiguous float32 ``(n, d)`` after checking it is 2-D, numeric, not empty
    and finite (the error names the first bad rows of ``source``)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ImportInputError(
            f"{source}: embeddings must be a 2-D array (one row per sample), got shape "
            f"{array.shape}" + ("; reshape it to (n, d)" if array.ndim == 3 else "")
        )
    if array.dtype.kind not in "fiu":
        raise ImportInputError(f"{source}: embeddings must be numbers, got dtype {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImportInputError(f"{source} holds no embeddings (shape {array.shape})")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not array.flags.writeable:  # arrow and safetensors buffers are read-only
        array = array.copy()
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise ImportInputError(
            f"{source}: {len(bad)} row(s) hold NaN or infinite values, first rows {_first(bad)}"
        )
    zero = np.flatnonzero(~array.any(axis=1))
    if len(zero):
        raise ImportInputError(
            f"{source}: {len(zero)} row(s) are all zeros (no direction to compare by cosine), "
            f"first rows {_first(zero)}"
        )
    return array


NPY_MAGIC = b"\x93NUMPY"  # how every file numpy.save writes begins


def _npy(path: Path) -> np.ndarray:
    _check_npy(path)
    return np.load(path, allow_pickle=False)


def _check_npy(path: Path) -> None:
    """Raise ``ImportInputError`` unless ``path`` begins as a file ``numpy.save`` wrote (numpy
    itself takes any other file for a pickle, and says so)."""
    with open(path, "rb") as handle:
        head = handle.read(len(NPY_MAGIC))
    if head == NPY_MAGIC:
        return
    kind = "a Python pickle" if head[:1] == b"\x80" else _kind(head)
    raise ImportInputError(
        f"{path} is not a valid .npy file: it does not begin with numpy's header (it looks "
        f"like {kind}); save the array with numpy.save, or give the file its real suffix"
    )


def _kind(head: bytes) -> str:
    """A guess at what a file is from its first bytes, for messages."""
    if head.startswith(b"PK"):
        return "a zip archive (a .npz file?)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of another format"
    return "text"


def _one_of(arrays: dict, path: Path) -> object:
    """The only array of a container, or its ``embeddings`` one."""
    if not arrays:
        raise ImportInputError(f"{path} holds no arrays")
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if EMBEDDINGS_KEY in arrays:
        return arrays[EMBEDDINGS_KEY]
    raise ImportInputError(
        f"{path} holds {len(arrays)} arrays ({', '.join(sorted(map(str, arrays)))}); name the "
        f"one to import {EMBEDDINGS_KEY!r}"
    )


def _npz(path: Path) -> np.ndarray:
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        raise ImportInputError(f"{path} is a .npy file, not .npz; rename it")
    with data:
        return np.asarray(_one_of({key: data[key] for key in data.files}, path))


def _safetensors(path: Path) -> np.ndarray:
    from safetensors.torch import load_file

    return _tensor_to_numpy(_one_of(load_file(str(path)), path), path)


def _torch(path: Path) -> np.ndarray:
    import torch

    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict):
        loaded = _one_of(loaded, path)
    return _tensor_to_numpy(loaded, path)


def _tensor_to_numpy(value: object, path: Path) -> np.ndarray:
    import torch

    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, torch.Tensor):
        raise ImportInputError(f"{path} holds a {type(value).__name__}, not a tensor")
    if value.is_floating_point() and value.dtype not in (torch.float32, torch.float64):
        value = value.float()  # bfloat16 has no numpy type
    return value.detach().cpu().numpy()


def _parquet(path: Path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    lists = [f.name for f in schema if pa.types.is_list(f.type) or _fixed_list(f.type)]
    lists += [f.name for f in schema if pa.types.is_large_list(f.type)]
    if not lists:
        raise ImportInputError(
            f"{path} has no list or array column (columns: {', '.join(schema.names)}); store "
            "each embedding as one list value"
        )
    if len(lists) > 1 and EMBEDDINGS_KEY not in lists:
        raise ImportInputError(
            f"{path} has {len(lists)} list columns ({', '.join(lists)}); name the one to import "
            f"{EMBEDDINGS_KEY!r}"
        )
    name = lists[0] if len(lists) == 1 else EMBEDDINGS_KEY
    column = pq.read_table(path, columns=[name]).column(name).combine_chunks()
    if column.null_count:
        first = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        raise ImportInputError(
            f"{path}: column {name!r} has {column.null_count} empty row(s), first rows "
            f"{_first(first)}"
        )
    if len(column) == 0:
        raise ImportInputError(f"{path} holds no rows")
    if _fixed_list(column.type):
        width = column.type.list_size
    else:
        lengths = np.diff(column.offsets.to_numpy())
        width = int(lengths[0])
        uneven = np.flatnonzero(lengths != width)
        if len(uneven):
            raise ImportInputError(
                f"{path}: column {name!r} holds lists of different lengths ({width} in row 0, "
                f"{int(lengths[uneven[0]])} in row {int(uneven[0])})"
            )
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)


def _fixed_list(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_fixed_size_list(arrow_type)


def rows_sharing_a_hash(rows: np.ndarray) -> np.ndarray:
    """Indices of the rows whose 64-bit hash of their bytes another row shares (cheaper to sort)."""
    words = rows.view(np.uint32).reshape(len(rows), -1)
    weights = np.random.default_rng(0).integers(1, 2**63, words.shape[1], dtype=np.uint64) | 1
    hashes = np.empty(len(rows), dtype=np.uint64)
    for start in range(0, len(rows), ROW_BLOCK):  # uint64 products wrap: a multiply-add hash
        block = words[start : start + ROW_BLOCK].astype(np.uint64)
        hashes[start : start + ROW_BLOCK] = (block * weights).sum(axis=1, dtype=np.uint64)
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1)


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """``embeddings`` divided by their row norms in place, a block at a time (no full temporary)."""
    for start in range(0, len(embeddings), ROW_BLOCK):
        block = embeddings[start : start + ROW_BLOCK]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return embeddings


# -- labels ---------------------------------------------------------------------------------------


def read_labels(path: str | Path) -> np.ndarray:
    """The labels in ``path``, one per sample: int64 when every label is an integer, else
    strings. ``.npy``: a 1-D array (integers or strings); anything else is text: one label per
    line, or a CSV with a ``label`` column. Raises ``ImportInputError`` for an empty file, an
    empty label, or a file of the wrong kind."""
    path = _existing(path)
    if path.suffix.lower() == ".npy":
        _check_npy(path)
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ImportInputError(
                f"{path} is not a valid .npy file of labels ({error}); save integers or strings "
                "(not Python objects) with numpy.save"
            ) from None
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ImportInputError(
                f"{path}: labels must be a 1-D array (one per sample), got shape {array.shape}"
            )
        if array.dtype.kind in "iu" or _whole(array):
            values = [str(v) for v in array.astype(np.int64).tolist()]
        elif array.dtype.kind in "US":
            values = [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]
        else:
            raise ImportInputError(
                f"{path}: labels must be integers or strings, got dtype {array.dtype}"
            )
    else:
        values = _text_labels(path)
    if not values:
        raise ImportInputError(f"{path} holds no labels")
    empty = [i for i, v in enumerate(values) if not v.strip()]
    if empty:
        raise ImportInputError(f"{path}: {len(empty)} empty label(s), first rows {_first(empty)}")
    return as_labels(values)


def as_labels(values: list[str]) -> np.ndarray:
    """Labels as int64 when every value is an integer, else as strings (stripped)."""
    values = [v.strip() for v in values]
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return np.array(values, dtype=str)


def _whole(array: np.ndarray) -> bool:
    return (
        array.dtype.kind == "f"
        and bool(np.isfinite(array).all())
        and bool((array == np.round(array)).all())
    )


def _text_labels(path: Path) -> list[str]:
    text = _text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return []
    header = [h.strip() for h in next(csv.reader([lines[0]]))]
    if path.suffix.lower() in (".csv", ".tsv") and len(header) > 1 and "label" not in header:
        raise ImportInputError(
            f"{path} has {len(header)} columns ({', '.join(header)}) but none named 'label'; "
            "name the labels' column 'label', or give one label per line"
        )
    if "label" in header:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        frame.columns = [c.strip() for c in frame.columns]
        return list(frame["label"])
    return lines


def _text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise ImportInputError(f"{path} is empty")
    if b"\0" in data[:4096]:
        raise ImportInputError(
            f"{path} is a binary file, not text; labels and paths are text with one per line"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportInputError(f"{path} is not UTF-8 text ({error})") from None


# -- image paths ----------------------------------------------------------------------------------


def read_image_paths(path: str | Path) -> np.ndarray:
    """Absolute image paths, one per line of the text file ``path`` (relative ones are taken
    from the file's own folder). Raises ``ImportInputError`` for an empty file or line."""
    path = _existing(path)
    lines = _text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    empty = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if empty:
        raise ImportInputError(f"{path}: {len(empty)} empty line(s), first lines {_first(empty)}")
    return absolute_paths([line.strip() for line in lines], path.parent)


def absolute_paths(paths: list[str], folder: Path) -> np.ndarray:
    """``paths`` made absolute against ``folder`` (absolute ones kept), normalised, as strings."""
    base = os.path.abspath(folder)
    prefix = base.rstrip("/") + "/"
    # a relative path without empty, "." or ".." parts is already normal: joined as text (a
    # million os.path.normpath calls cost seconds)
    return np.array(
        [prefix + p if _plain(p) else os.path.normpath(os.path.join(base, p)) for p in paths],
        dtype=str,
    )


def _plain(path: str) -> bool:
    """Whether ``path`` is relative and normal on a POSIX system (no empty, "." or ".." part)."""
    if os.sep != "/" or not path or path[0] == "/" or path[-1] == "/" or "//" in path:
        return False
    return "." not in path or not any(part in (".", "..") for part in path.split("/"))


def missing_files(paths: np.ndarray) -> np.ndarray:
    """Row indices of ``paths`` that are not existing files (each distinct path checked once)."""
    items = paths.tolist()
    exists = {path: os.path.isfile(path) for path in set(items)}
    return np.flatnonzero([not exists[path] for path in items])


# -- Open Metric Learning CSV ---------------------------------------------------------------------


def read_oml_csv(path: str | Path, dataset_root: str | Path | None = None) -> pd.DataFrame:
    """The rows of an OML retrieval CSV, read and checked by the ``csv`` dataset's reader
    (``dmlviz.data.table.read_table``), as a frame with ``label`` (str), ``path`` (absolute,
    against ``dataset_root``, default the CSV's folder), ``split`` (train / validation),
    ``is_query``, ``is_gallery`` (bool) and, when the CSV has them, ``category`` and the crop
    box ``x_1, x_2, y_1, y_2`` (float, NaN without a box). The images need not exist. Raises
    ``ImportInputError`` naming the row, the line and the column of the first bad value."""
    from dmlviz.data.table import read_table

    path = _existing(path)
    _text(path)  # empty and binary files get their own message
    try:
        base, table = read_table(path, base=dataset_root, images=False)
    except ValueError as error:  # DatasetFormatError, DatasetNotFoundError
        raise ImportInputError(str(error)) from None
    return table.assign(path=absolute_paths(list(table["path"]), base))


# -- helpers ----------------------------------------------------------------------------------------


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ImportInputError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ImportInputError(f"{path} is empty")
    return path


def _first(rows, count: int = 5) -> str:
    """The first ``count`` row numbers as text: ``"3, 7, 9"`` or ``"3, 7, 9, ..."``."""
    rows = [int(r) for r in rows]
    text = ", ".join(str(r) for r in rows[:count])
    return text + (", ..." if len(rows) > count else "")
