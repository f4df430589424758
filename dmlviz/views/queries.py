"""The Worst queries page: every query of a split with its AP@R and first-correct rank, to sort,
filter and export."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmlviz.views.embedding_map import class_names_of

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
    ``r_precision``, ``first_correct_rank`` (NaN: none in the stored list) and, when the neighbour
    table and labels are given, ``top1_class`` (the class of its nearest neighbour); with the
    split's ``flipped`` mask (train split of a noisy run), ``flipped``: the query's own training
    label was corrupted."""
    table = pd.DataFrame(
        {
            "query": per_query["query"].to_numpy(dtype=np.int64),
            "class": class_names_of(per_query["label"].to_numpy(), class_names),
            "r": per_query["r"].to_numpy(),
            "ap@r": per_query["ap@r"].to_numpy(dtype=float),
            "r_precision": per_query["r_precision"].to_numpy(dtype=float),
            "first_correct_rank": per_query["first_correct_rank"].to_numpy(dtype=float),
        }
    )
    if neighbours is not None and labels is not None and len(neighbours) >= len(table):
        top1 = neighbours[table["query"].to_numpy(), 0]
        table["top1_class"] = class_names_of(np.asarray(labels)[top1], class_names)
    if flipped is not None and len(flipped) > table["query"].max():
        table["flipped"] = np.asarray(flipped, dtype=bool)[table["query"].to_numpy()]
    return table


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
        mask &= table["first_correct_rank"].ne(1)
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


def per_class_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean AP@R and share of top-1 hits per class, worst class first (``class``, ``queries``,
    ``ap@r``, ``precision@1``)."""
    grouped = table.assign(hit=table["first_correct_rank"].eq(1).astype(float)).groupby("class")
    frame = pd.DataFrame(
        {
            "queries": grouped.size(),
            "ap@r": grouped["ap@r"].mean(),
            "precision@1": grouped["hit"].mean(),
        }
    )
    return frame.reset_index().sort_values("ap@r", kind="stable").reset_index(drop=True)


def to_csv(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV bytes (for ``st.download_button``)."""
    return table.to_csv(index=False).encode("utf-8")
