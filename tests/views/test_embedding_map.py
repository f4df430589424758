"""The Embedding map page's views: the map frame, the WebGL figure, selections, the trust note."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dmlviz.views.embedding_map import (
    color_options,
    map_figure,
    map_frame,
    region_indices,
    sample_note,
    selected_indices,
    selection_table,
    shown_rows,
    trust_note,
    umap_progress_notice,
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


@pytest.fixture
def big_frame():
    rng = np.random.default_rng(1)
    n = 3000
    labels = rng.integers(0, 4, n)
    coords = rng.standard_normal((4, 2))[labels] * 5 + rng.standard_normal((n, 2))
    return map_frame(coords, labels, flipped=rng.random(n) < 0.3)


def _drawn(figure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sample ids, x, y)`` of every drawn point (the scatter traces)."""
    traces = [t for t in figure.data if isinstance(t, go.Scattergl)]
    ids = np.concatenate([np.asarray(t.customdata)[:, 0] for t in traces]).astype(int)
    return ids, np.concatenate([t.x for t in traces]), np.concatenate([t.y for t in traces])


@pytest.mark.parametrize("color_by", ["label", "flipped"])
def test_a_big_map_draws_a_sample_over_the_density_of_all(big_frame, color_by):
    figure = map_figure(big_frame, color_by, max_points=500)
    density = figure.data[0]
    assert isinstance(density, go.Heatmap) and density.hoverinfo == "skip"
    assert np.nansum(np.expm1(np.asarray(density.z, float))) == pytest.approx(3000, rel=1e-4)
    ids, x, y = _drawn(figure)
    assert sorted(ids) == list(shown_rows(3000, 500)) and len(set(ids)) == 500
    # a click on any drawn point names the sample drawn there
    for j in (0, 123, 499):
        clicked = selected_indices({"selection": {"points": [{"customdata": [int(ids[j])]}]}})
        assert clicked == [ids[j]]
        assert big_frame.loc[ids[j], ["x", "y"]].to_numpy() == pytest.approx([x[j], y[j]])
    if color_by == "flipped":  # the legend counts every sample, not only the drawn ones
        assert figure.data[2].name == f"label flipped ({int(big_frame['flipped'].sum())})"
    assert "500 of the 3,000" in sample_note(3000, 500)


def test_a_map_under_the_limit_draws_every_point(big_frame):
    ids, _, _ = _drawn(map_figure(big_frame, "label", max_points=None))
    assert sorted(ids) == list(range(3000))
    assert not any(isinstance(t, go.Heatmap) for t in map_figure(big_frame, max_points=3000).data)
    assert sample_note(3000, 3000) is None


def test_a_lasso_or_box_selects_every_sample_inside_drawn_or_not(big_frame):
    x, y = big_frame["x"].to_numpy(), big_frame["y"].to_numpy()
    triangle = {"x": [0.0, 10.0, 0.0], "y": [0.0, 0.0, 10.0]}
    inside = np.flatnonzero((x > 0) & (y > 0) & (x + y < 10))
    assert region_indices(big_frame, [], [triangle]) == list(inside)
    box = {"x": [2.0, -3.0], "y": [-1.0, 4.0]}  # corners in either order
    in_box = np.flatnonzero((x >= -3) & (x <= 2) & (y >= -1) & (y <= 4))
    assert region_indices(big_frame, [box], []) == list(in_box)
    drawn = set(shown_rows(3000, 500))
    assert set(in_box) - drawn  # some selected samples are not drawn
    event = {"selection": {"points": [{"customdata": [int(in_box[0])]}], "box": [box], "lasso": []}}
    assert selected_indices(event, big_frame) == list(in_box)
    assert selected_indices(event) == [in_box[0]]  # without the frame: the points sent


def test_umap_progress_notice():
    assert umap_progress_notice(None)[0] == 0.0
    record = {"stage": "layout", "done": 100, "total": 200, "started": 10.0, "updated": 20.0}
    fraction, text = umap_progress_notice(record, now=40.0)
    assert 0.1 < fraction < 0.95 and "epoch 100 of 200" in text and "30 s" in text
    assert umap_progress_notice({**record, "stage": "trustworthiness"})[0] == 0.95


def test_default_colour_is_flipped_only_where_labels_were_flipped():
    from dmlviz.views.embedding_map import default_color

    assert default_color(pd.DataFrame({"flipped": [False, True]})) == "flipped"
    assert default_color(pd.DataFrame({"flipped": [False, False]})) == "label"
    assert default_color(pd.DataFrame({"label": [0, 1]})) == "label"
