"""The Worst queries page: every query of a split with its AP@R and first-correct rank, to sort,
filter and export, a page at a time with the query's and its nearest neighbour's thumbnails."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dmlviz.views.embedding_map import class_names_of
from dmlviz.views.style import CORRECT, WRONG
from dmlviz.views.thumbs import captioned_uri

PAGE_SIZE = 50  # rows shown at a time: only these get thumbnails

SORT_KEYS: dict[str, tuple[str, bool]] = {
    "AP@R, worst first": ("ap@r", True),
    "first correct rank, worst first": ("first_correct_rank", False),
    "class": ("class", True),
    "query index": ("query", True),
}


def query_table(
    per_query: pd.DataFrame,
    class_names: list[str] | None = None,
    neighbours: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    flipped: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per query: ``query``, ``class``, ``r`` (other samples of its class), ``ap@r``,
    ``r_precision``, ``precision@1`` (the chance that the nearest neighbour has the query's class:
    below 1 on a miss or a tie at the top), ``first_correct_rank`` (expected over the orders of
    tied neighbours; NaN: none in the stored list) and, when the neighbour
    table and labels are given, ``top1`` and ``top1_class`` (the index and class of its nearest
    neighbour, in the reference split); with the
    split's ``flipped`` mask (train split of a noisy run), ``flipped``: the query's own training
    label was corrupted."""
    table = pd.DataFrame(
        {
            "query": per_query["query"].to_numpy(dtype=np.int64),
            "class": class_names_of(per_query["label"].to_numpy(), class_names),
            "r": per_query["r"].to_numpy(),
            "ap@r": per_query["ap@r"].to_numpy(dtype=float),
            "r_precision": per_query["r_precision"].to_numpy(dtype=float),
            "precision@1": precision_at_1(per_query),
            "first_correct_rank": per_query["first_correct_rank"].to_numpy(dtype=float),
        }
    )
    if neighbours is not None and labels is not None and len(neighbours) >= len(table):
        top1 = neighbours[table["query"].to_numpy(), 0]
        table["top1"] = top1
        table["top1_class"] = class_names_of(np.asarray(labels)[top1], class_names)
    if flipped is not None and len(flipped) > table["query"].max():
        table["flipped"] = np.asarray(flipped, dtype=bool)[table["query"].to_numpy()]
    return table


def precision_at_1(per_query: pd.DataFrame) -> np.ndarray:
    """Each query's expected precision@1 from a per-query table; tables written before ties were
    counted at their expected value have no such column, and their first correct rank says it."""
    if "precision@1" in per_query:
        return per_query["precision@1"].to_numpy(dtype=float)
    first = per_query["first_correct_rank"].to_numpy(dtype=float)
    return np.where(np.isnan(first), np.nan, (first == 1).astype(float))


def filter_queries(
    table: pd.DataFrame,
    classes: list[str] | None = None,
    ap_range: tuple[float, float] = (0.0, 1.0),
    only_missed_top1: bool = False,
    sort: str = "AP@R, worst first",
) -> pd.DataFrame:
    """``table`` restricted to ``classes`` (all when empty), to AP@R within ``ap_range``
    (inclusive) and, with ``only_missed_top1``, to queries whose nearest neighbour is of another
    class; sorted by ``sort`` (a ``SORT_KEYS`` key), ties broken by query index."""
    mask = table["ap@r"].between(ap_range[0], ap_range[1]) | table["ap@r"].isna()
    if classes:
        mask &= table["class"].isin(classes)
    if only_missed_top1:
        mask &= table["precision@1"].ne(1)
    column, ascending = SORT_KEYS.get(sort, SORT_KEYS["AP@R, worst first"])
    out = table[mask]
    if column == "first_correct_rank":
        # a query with no correct neighbour in the list is worse than any rank
        key = out[column].fillna(np.inf)
        out = out.assign(_key=key).sort_values(
            ["_key", "query"], ascending=[False, True], kind="stable"
        )
        return out.drop(columns="_key").reset_index(drop=True)
    return out.sort_values(
        [column, "query"], ascending=[ascending, True], kind="stable"
    ).reset_index(drop=True)


def table_page(table: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> pd.DataFrame:
    """Rows ``(page - 1) * size`` up to ``page * size`` of ``table`` (pages count from 1; a page
    past the end gives the last one)."""
    page = min(max(1, int(page)), page_count(len(table), size))
    return table.iloc[(page - 1) * size : page * size]


def page_count(rows: int, size: int = PAGE_SIZE) -> int:
    """How many pages of ``size`` rows ``rows`` rows fill (at least one)."""
    return max(1, -(-rows // size))


def with_images(
    page: pd.DataFrame,
    thumbnails: Callable[[int], str],
    reference_thumbnails: Callable[[int], str] | None = None,
) -> pd.DataFrame:
    """``page`` (rows of ``query_table``) with two picture columns in front: ``query_image`` (the
    query, its class written under it) and, when the table has ``top1``, ``top1_image`` (its
    nearest neighbour and that one's class, green when it is the query's, red when not).
    ``thumbnails(i)`` is a sample's data URI
    (``ThumbnailCache``); ``reference_thumbnails`` those of the split the neighbours come from
    (default: the same). Only ``page``'s rows are encoded: pass a page, not a whole split."""
    reference_thumbnails = reference_thumbnails or thumbnails
    images = {
        "query_image": [
            captioned_uri(thumbnails(i), str(name))
            for i, name in zip(page["query"], page["class"], strict=True)
        ]
    }
    if "top1" in page:
        images["top1_image"] = [
            captioned_uri(reference_thumbnails(i), str(name), color=CORRECT if hit else WRONG)
            for i, name, hit in zip(
                page["top1"], page["top1_class"], page["top1_class"] == page["class"], strict=True
            )
        ]
    return pd.concat([pd.DataFrame(images, index=page.index), page], axis=1)


def per_class_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean AP@R and share of top-1 hits per class, worst class first (``class``, ``queries``,
    ``ap@r``, ``precision@1``)."""
    grouped = table.groupby("class")
    frame = pd.DataFrame(
        {
            "queries": grouped.size(),
            "ap@r": grouped["ap@r"].mean(),
            "precision@1": grouped["precision@1"].mean(),
        }
    )
    return frame.reset_index().sort_values("ap@r", kind="stable").reset_index(drop=True)


def to_csv(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV bytes (for ``st.download_button``)."""
    return table.to_csv(index=False).encode("utf-8")
