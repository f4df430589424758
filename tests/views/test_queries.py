"""The Worst queries page's views: the query table, filters, sorting, CSV."""

import io

import numpy as np
import pandas as pd

from dmlviz.views.queries import filter_queries, per_class_table, query_table, to_csv


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
