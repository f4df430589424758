"""The Embedding map page's views: the map frame, the WebGL figure, selections, the trust note."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dmlviz.views.embedding_map import (
    color_options,
    map_figure,
    map_frame,
    selected_indices,
    selection_table,
    trust_note,
)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 12
    labels = np.repeat([0, 1, 2], 4)
    observed = labels.copy()
    observed[[1, 5]] = [2, 0]
    per_query = pd.DataFrame(
        {
            "query": np.arange(n)[::-1],
            "ap@r": np.linspace(0, 1, n)[::-1],
            "first_correct_rank": np.arange(1, n + 1)[::-1],
        }
    )
    consistency = pd.DataFrame({"index": np.arange(n), "consistency_observed": np.full(n, 0.5)})
    return map_frame(
        rng.standard_normal((n, 2)),
        labels,
        ["zero", "one", "two"],
        observed,
        observed != labels,
        per_query,
        consistency,
    )


def test_map_frame_aligns_tables_by_sample(frame):
    assert list(frame["class"][:4]) == ["zero"] * 4
    assert frame.loc[1, "observed_class"] == "two"
    assert frame["flipped"].sum() == 2
    assert frame.loc[0, "ap@r"] == pytest.approx(0.0)  # per_query sorted back by query
    assert frame.loc[11, "first_correct_rank"] == 12
    assert color_options(frame) == ["label", "observed", "flipped", "ap@r", "consistency"]


def test_map_frame_ignores_mismatched_tables():
    frame = map_frame(np.zeros((3, 2)), np.array([0, 1, 7]), ["a", "b"], observed=np.zeros(5))
    assert "observed" not in frame
    assert list(frame["class"]) == ["a", "b", "7"]  # unknown label keeps its number
    with pytest.raises(ValueError, match="coordinates"):
        map_frame(np.zeros((2, 2)), np.array([0, 1, 2]))


@pytest.mark.parametrize("color_by", ["label", "observed", "flipped", "ap@r", "consistency"])
def test_map_figure_is_webgl_with_sample_ids(frame, color_by):
    figure = map_figure(frame, color_by)
    assert all(isinstance(trace, go.Scattergl) for trace in figure.data)
    ids = sorted(int(row[0]) for trace in figure.data for row in trace.customdata)
    assert ids == list(range(len(frame)))
    assert figure.layout.dragmode is None  # Streamlit's pan: a click selects a point


def test_map_figure_categories_and_flags(frame):
    assert [t.name for t in map_figure(frame, "label").data] == ["zero", "one", "two"]
    flags = map_figure(frame, "flipped").data
    assert flags[1].name == "label flipped (2)" and len(flags[1].x) == 2


def test_map_figure_marks_lens_query_and_neighbours(frame):
    figure = map_figure(frame, "label", query=3, neighbours=[0, 1, 2])
    assert figure.data[-1].name == "lens query" and figure.data[-1].customdata[0][0] == 3
    assert len(figure.data[-2].x) == 3


def test_map_figure_many_classes_share_one_trace():
    n = 100
    frame = map_frame(np.zeros((n, 2)), np.arange(n))
    figure = map_figure(frame, "label")
    assert len(figure.data) == 1 and len(figure.data[0].marker.color) == n
    assert figure.data[0].marker.colorscale  # class codes through a stepped colour scale


def test_selected_indices_reads_dict_events():
    event = {
        "selection": {
            "points": [
                {"point_index": 0, "customdata": [7]},
                {"point_index": 3, "customdata": [2, 0.4]},
                {"customdata": [7]},
                {"point_index": 1},
                {"customdata": {"0": 11, "1": 0.5}},
            ]
        }
    }
    assert selected_indices(event) == [7, 2, 11]
    assert selected_indices(None) == []
    assert selected_indices({"selection": {"points": []}}) == []


def test_selection_table(frame):
    table = selection_table(frame, [5, 1], ["a", "b"])
    assert list(table["sample"]) == [5, 1]
    assert list(table["image"]) == ["a", "b"]
    assert {"observed label", "flipped", "AP@R", "consistency"} <= set(table.columns)


def test_trust_note():
    meta = {
        "trustworthiness": 0.91,
        "trustworthiness_neighbors": 10,
        "trustworthiness_points": 500,
        "params": {"method": "umap", "n_neighbors": 15, "min_dist": 0.1, "seed": 0, "n": 9},
    }
    note = trust_note(meta, "umap")
    assert "UMAP map (n_neighbors=15, min_dist=0.1, seed=0)" in note
    assert "0.910" in note and "mostly faithful" in note and "500 points" in note
    assert "unknown" in trust_note(None, "pca")
    assert "No trustworthiness" in trust_note({"params": {}}, "pca")
