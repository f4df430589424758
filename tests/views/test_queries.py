"""The Worst queries page's views: the query table, filters, sorting, CSV."""

import io
from urllib.parse import unquote

import numpy as np
import pandas as pd

from dmlviz.views.queries import (
    PAGE_SIZE,
    filter_queries,
    page_count,
    per_class_table,
    query_table,
    table_page,
    to_csv,
    with_images,
)
from dmlviz.views.style import CORRECT, WRONG


def _table():
    per_query = pd.DataFrame(
        {
            "query": [0, 1, 2, 3],
            "label": [0, 0, 1, 1],
            "r": [1, 1, 1, 1],
            "ap@r": [1.0, 0.2, 0.0, 0.5],
            "r_precision": [1.0, 0.0, 0.0, 1.0],
            "first_correct_rank": [1, 3, np.nan, 2],
        }
    )
    neighbours = np.array([[1, 2], [2, 0], [0, 1], [1, 2]])
    flipped = np.array([False, True, False, False])
    return query_table(per_query, ["cat", "dog"], neighbours, np.array([0, 0, 1, 1]), flipped)


def test_query_table_columns():
    table = _table()
    assert list(table["class"]) == ["cat", "cat", "dog", "dog"]
    assert list(table["top1"]) == [1, 2, 0, 1]
    assert list(table["top1_class"]) == ["cat", "dog", "cat", "cat"]
    assert list(table["flipped"]) == [False, True, False, False]


def test_sorts():
    table = _table()
    assert list(filter_queries(table)["query"]) == [2, 1, 3, 0]
    # no correct neighbour at all counts as the worst rank
    assert list(filter_queries(table, sort="first correct rank, worst first")["query"]) == [
        2,
        1,
        3,
        0,
    ]
    assert list(filter_queries(table, sort="class")["class"]) == ["cat", "cat", "dog", "dog"]


def test_filters():
    table = _table()
    assert list(filter_queries(table, classes=["dog"])["query"]) == [2, 3]
    assert list(filter_queries(table, ap_range=(0.1, 0.6))["query"]) == [1, 3]
    assert list(filter_queries(table, only_missed_top1=True)["query"]) == [2, 1, 3]


def test_per_class_and_csv():
    table = _table()
    classes = per_class_table(table)
    assert list(classes["class"]) == ["dog", "cat"]
    assert classes.set_index("class").loc["cat", "precision@1"] == 0.5
    back = pd.read_csv(io.BytesIO(to_csv(table)))
    assert list(back.columns) == list(table.columns) and len(back) == 4


def test_pages():
    table = pd.DataFrame({"query": np.arange(2 * PAGE_SIZE + 3)})
    assert page_count(len(table)) == 3 and page_count(0) == 1
    assert list(table_page(table, 2)["query"]) == list(range(PAGE_SIZE, 2 * PAGE_SIZE))
    assert list(table_page(table, 9)["query"]) == list(range(2 * PAGE_SIZE, 2 * PAGE_SIZE + 3))


def test_images_of_the_query_and_its_top1_with_their_classes():
    """SVG data URIs (``dmlviz.views.thumbs.captioned_uri``): the thumbnail, its class under it."""
    asked = []

    def thumbnails(i):
        asked.append(int(i))
        return f"data:image/png;base64,THUMB{int(i)}"

    page = filter_queries(_table()).head(2)  # queries 2 and 1
    shown = with_images(page, thumbnails)
    assert list(shown.columns[:2]) == ["query_image", "top1_image"]
    assert list(shown.columns[2:]) == list(page.columns)
    assert sorted(asked) == [0, 1, 2, 2]  # the page's queries and their top-1s, nothing else
    svgs = [unquote(u.split(",", 1)[1]) for u in shown["top1_image"]]
    # query 2 (dog) has a cat first: wrong, in red; query 1 (cat) a dog: wrong too
    assert "THUMB0" in svgs[0] and ">cat</text>" in svgs[0] and WRONG in svgs[0]
    query_svg = unquote(shown["query_image"].iat[0].split(",", 1)[1])
    assert "THUMB2" in query_svg and ">dog</text>" in query_svg
    hit = with_images(filter_queries(_table()).tail(1), thumbnails)  # query 0: a cat, right
    assert CORRECT in unquote(hit["top1_image"].iat[0].split(",", 1)[1])


def test_a_tie_at_the_top_counts_as_a_partial_hit():
    per_query = pd.DataFrame(
        {"query": [0, 1, 2], "label": [0, 0, 1], "r": [2, 2, 1], "ap@r": [1.0, 0.5, 0.5],
         "r_precision": [1.0, 0.5, 0.5], "ap": [1.0, 0.5, 0.5], "precision@1": [1.0, 0.5, 0.0],
         "first_correct_rank": [1.0, 1.5, 2.0]}
    )  # fmt: skip
    table = query_table(per_query)
    assert list(filter_queries(table, only_missed_top1=True)["query"]) == [1, 2]
    by_class = per_class_table(table).set_index("class")["precision@1"]
    assert by_class.sort_index().tolist() == [0.75, 0.0]
    old = per_query.drop(columns="precision@1")  # a table written before the tie rule
    assert query_table(old)["precision@1"].tolist() == [1.0, 0.0, 0.0]
