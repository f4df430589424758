"""A CSV table of images in Open Metric Learning's retrieval format, one row per image.

Columns: ``label`` (the class), ``path`` (relative to the dataset root, or absolute), ``split``
(``train`` or ``validation``), ``is_query`` and ``is_gallery`` (booleans, read on validation
rows), and optionally ``category`` (kept in the file, not used) and the crop box ``x_1, x_2,
y_1, y_2`` (pixels, ``x_1 < x_2`` and ``y_1 < y_2``, the right and lower edges excluded; all
four, or none, on each row). The root is a folder holding ``df.csv`` (OML's name) or the CSV file
itself, whose folder is then the root.

The train rows train. The validation rows are searched query against gallery when the flags
split them (split names "query" and "gallery"), or every image against the others when every
validation row is both (split name "test").

``read_table`` is the one reader of this format: the ``csv`` dataset and ``dmlviz import --csv``
(``dmlviz.runs.readers``) both read it, with the same checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dmlviz.data.listing import DatasetFormatError, Listing, SplitLayout, missing

TABLE = "df.csv"
REQUIRED = ("label", "path", "split", "is_query", "is_gallery")
BOX = ("x_1", "x_2", "y_1", "y_2")
SPLITS = ("train", "validation")
TRUE, FALSE = ("true", "1", "1.0", "yes", "t", "y"), ("false", "0", "0.0", "no", "f", "n")
SHOWN_ROWS = 5  # bad rows named in an error
HOW = "Write a CSV table of your images in Open Metric Learning's format."
LAYOUT = (
    f"  <root>/{TABLE} (or the CSV file itself as root), columns "
    + ", ".join(REQUIRED)
    + " [, category] [, x_1, x_2, y_1, y_2]:\n"
    "    label,path,split,is_query,is_gallery\n"
    "    shoe_1,images/a.jpg,train,,\n"
    "    shoe_9,images/b.jpg,validation,True,False\n"
    "  paths relative to the root; split train or validation"
)

# Read once per file version and way of reading it.
_TABLES: dict[tuple[Path, Path | None, bool], tuple[tuple[int, int], Path, pd.DataFrame]] = {}


def list_table(root: Path | None, split: str, protocol: str, seed: int, download: bool) -> Listing:
    """The rows of ``split``: "train", and "test" or "query" / "gallery" as ``table_layout``
    says; class key = rank of the label among all labels (numbers in numeric order).
    ``protocol``, ``seed`` and ``download`` play no part."""
    base, table = read_table(root)
    names = sorted(set(table["label"]), key=_label_order)
    key_of = {name: k for k, name in enumerate(names)}
    validation = table[table["split"] == "validation"]
    if split == "train":
        rows = table[table["split"] == "train"]
    elif split == "test":
        rows = validation
    else:
        rows = validation[validation[f"is_{split}"]]
    label_keys = None
    if split in ("query", "gallery"):
        label_keys = np.asarray(sorted(key_of[name] for name in set(validation["label"])))
    boxes = None
    if "x_1" in table:
        boxes = [
            None if pd.isna(x_1) else (int(x_1), int(y_1), int(x_2), int(y_2))
            for x_1, y_1, x_2, y_2 in rows[["x_1", "y_1", "x_2", "y_2"]].itertuples(index=False)
        ]
    return Listing(
        items=[base / path for path in rows["path"]],
        sample_ids=list(rows["path"]),
        keys=np.asarray([key_of[name] for name in rows["label"]], dtype=np.int64),
        class_names=dict(enumerate(names)),
        root=base,
        label_keys=label_keys,
        boxes=boxes,
    )


def table_layout(root: Path | None, test_root: Path | None = None) -> SplitLayout:
    """Query against gallery when the validation rows' flags split them, else self-retrieval."""
    _, table = read_table(root)
    validation = table[table["split"] == "validation"]
    if (validation["is_query"] & validation["is_gallery"]).all():
        return SplitLayout("csv split column")
    return SplitLayout("csv split column, query/gallery flags", ("query", "gallery"))


def read_table(
    root: Path | str | None, base: Path | str | None = None, images: bool = True
) -> tuple[Path, pd.DataFrame]:
    """``(folder the paths are relative to, validated table)``; the flags become bools (False on
    train rows) and the box columns (when present) floats, NaN where a row has no box. ``base``
    is that folder (default: the CSV's); ``images`` False skips the check that every path names
    a file (``dmlviz import`` works without the images). Raises ``DatasetFormatError`` naming
    the row and the column of the first problem (and ``DatasetNotFoundError`` without a table);
    the table returned is shared: copy it before changing it."""
    if root is None:
        raise missing("csv", None, HOW, LAYOUT)
    root = Path(root).expanduser()
    path = root / TABLE if root.is_dir() else root
    if not path.is_file():
        raise missing("csv", root, HOW, LAYOUT)
    stat = path.stat()
    version = (stat.st_size, stat.st_mtime_ns)
    key = (path, None if base is None else Path(base), images)
    cached = _TABLES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2]
    folder = path.parent if base is None else Path(base).expanduser()
    table = _validate(path, folder, _read(path), images)
    _TABLES[key] = (version, folder, table)
    return folder, table


def _read(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetFormatError(f"{path} is not a readable CSV table ({error})") from None
    table.columns = [str(c).strip() for c in table.columns]
    for column in (*REQUIRED, *BOX):
        if column in table:
            table[column] = table[column].str.strip()
    return table


def _validate(path: Path, base: Path, table: pd.DataFrame, images: bool) -> pd.DataFrame:
    """The checks of ``read_table``, column by column."""
    for column in REQUIRED:
        if column not in table:
            raise DatasetFormatError(
                f"{path}: column {column!r} is missing; the file has "
                f"{', '.join(map(repr, table.columns))}. Expected layout:\n{LAYOUT}"
            )
    given = [c for c in BOX if c in table]
    if given and len(given) < len(BOX):
        absent = [c for c in BOX if c not in table]
        raise DatasetFormatError(
            f"{path}: column {absent[0]!r} is missing: a crop box needs all of "
            f"{', '.join(BOX)} (or none of them)"
        )
    if table.empty:
        raise DatasetFormatError(f"{path} has a header but no rows")
    _check(path, table, table["label"] == "", "label", "is empty: every image needs a label")
    _check(path, table, table["path"] == "", "path", "is empty: every row needs an image path")
    _check(path, table, ~table["split"].isin(SPLITS), "split", "is not train or validation")
    validation = table["split"] == "validation"
    for column in ("is_query", "is_gallery"):
        text = table[column].str.lower()
        bad = ~text.isin((*TRUE, *FALSE)) & (validation | (text != ""))
        _check(path, table, bad, column, "is not a boolean (True or False)")
        table[column] = text.isin(TRUE) & validation
    _check_flags(path, table, validation)
    if images:
        exists = np.fromiter(((base / p).is_file() for p in table["path"]), bool, len(table))
        _check(path, table, ~exists, "path", f"names no file (paths are relative to {base})")
    if given:
        _check_boxes(path, base, table)
    return table


def _check_boxes(path: Path, base: Path, table: pd.DataFrame) -> None:
    """Each box value empty or a whole number >= 0, all four or none on a row, in order and
    inside its image (read from the image's header); the columns become floats (NaN: no box)."""
    empty = table[list(BOX)] == ""
    numbers = {}
    for column in BOX:
        number = pd.to_numeric(table[column].where(~empty[column]), errors="coerce")
        bad = ~empty[column] & ~(number.notna() & (number >= 0) & (number == number.round()))
        _check(path, table, bad, column, "is not a whole number of pixels >= 0")
        numbers[column] = number
    partial = empty.any(axis=1) & ~empty.all(axis=1)
    if partial.any():
        column = str(empty[partial].iloc[0].idxmax())
        _check(path, table, partial, column, f"is empty but not all of {', '.join(BOX)} are")
    for low, high in (("x_1", "x_2"), ("y_1", "y_2")):
        bad = numbers[low] >= numbers[high]
        _check(path, table, bad, high, f"is not greater than {low}: the box is empty or reversed")
    sizes = np.full((len(table), 2), np.inf)  # (width, height) of each boxed row's image
    for row in np.flatnonzero(~empty.any(axis=1).to_numpy()):
        sizes[row] = _image_size(base / table["path"].iat[row])
    for column, side, axis in (("x_2", "width", 0), ("y_2", "height", 1)):
        beyond = numbers[column].to_numpy() > sizes[:, axis]
        if beyond.any():
            size = int(sizes[np.argmax(beyond), axis])
            _check(path, table, beyond, column, f"is beyond the image's {side} of {size} px")
    for column, number in numbers.items():
        table[column] = number


def _check_flags(path: Path, table: pd.DataFrame, validation: pd.Series) -> None:
    """Validation rows: all both query and gallery (self-retrieval), or each exactly one."""
    query, gallery = table["is_query"], table["is_gallery"]
    if (query & gallery)[validation].all():
        return
    neither = validation & ~query & ~gallery
    _check(path, table, neither, "is_query", "and is_gallery are both False: never evaluated")
    both = query & gallery
    _check(
        path, table, both, "is_query",
        "and is_gallery are both True while other validation rows are not: make every "
        "validation row both (each image searched among the others) or each row one of them "
        "(queries searched in the gallery)",
    )  # fmt: skip
    if not gallery[validation].any() or not query[validation].any():
        raise DatasetFormatError(
            f"{path}: the validation rows need at least one query and one gallery image"
        )


def _check(path: Path, table: pd.DataFrame, bad: pd.Series, column: str, problem: str) -> None:
    """Raise naming the first rows where ``bad`` holds (row 1 is the line after the header)."""
    rows = np.flatnonzero(np.asarray(bad, dtype=bool))
    if not len(rows):
        return
    first = int(rows[0])
    value = table[column].iat[first] if column in table else ""
    more = (
        f"; also rows {', '.join(str(r + 1) for r in rows[1:SHOWN_ROWS])}" if len(rows) > 1 else ""
    )
    more += f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    raise DatasetFormatError(
        f"{path}, row {first + 1} (line {first + 2}), column {column!r}: {str(value)!r} "
        f"{problem}{more}"
    )


def _image_size(path: Path) -> tuple[float, float]:
    """``(width, height)`` of an image from its header; infinite when it cannot be read (the
    image check skips such a file later, with a warning)."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # PIL raises many types for a file that is not an image
        return (np.inf, np.inf)


def _label_order(name: str) -> tuple[int, float, str]:
    """Numbers first, in numeric order, then other labels in text order."""
    try:
        return 0, float(name), name
    except ValueError:
        return 1, 0.0, name
