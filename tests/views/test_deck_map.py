"""The deck.gl Embedding map: the rows it draws, its JSON spec and what a click on it picks."""

import json

import numpy as np
import pandas as pd
import pytest

from dmlviz.views.deck_map import (
    LENS_LAYER,
    POINTS_LAYER,
    deck_chart,
    deck_clicked,
    deck_points,
    points_layer,
    use_deck,
)
from dmlviz.views.embedding_map import MAX_MAP_POINTS, map_frame
from dmlviz.views.style import CLEAN, NOISY, class_color


@pytest.fixture
def frame():
    labels = np.array([0, 1, 2, 0, 1, 2])
    per_query = pd.DataFrame({"query": np.arange(6), "ap@r": [0.0, 1.0, np.nan, 0.5, 0.25, 1.0]})
    return map_frame(
        np.array([[0, 0], [1, 0], [0, 1], [10, 10], [3.14159, 2], [5, 5]]),
        labels,
        ["zero", "one", "two"],
        flipped=np.array([False, True, False, False, False, True]),
        per_query=per_query,
    )


def _hex(rgb) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def test_use_deck_only_where_plotly_draws_a_sample():
    assert not use_deck(MAX_MAP_POINTS)
    assert use_deck(MAX_MAP_POINTS + 1)


def test_deck_points_colour_by_class_as_the_plotly_map(frame):
    points = deck_points(frame, "label")
    assert list(points.columns) == ["i", "x", "y", "c", "t"]
    assert points["i"].tolist() == list(range(6))
    assert [_hex(c) for c in points["c"]] == [class_color(k, 3) for k in frame["label"]]
    assert points["t"].tolist() == ["zero", "one", "two", "zero", "one", "two"]
    assert points["x"][4] == pytest.approx(3.14)  # to a thousandth of the extent (10)


def test_deck_points_flags_and_scores(frame):
    flags = deck_points(frame, "flipped")
    assert _hex(flags["c"][1]) == NOISY.upper() and _hex(flags["c"][0]) == CLEAN.upper()
    assert flags["t"][1] == "label flipped"
    scores = deck_points(frame, "ap@r")
    red, green, unknown = scores["c"][0], scores["c"][1], scores["c"][2]
    assert red[0] > red[1] and green[1] > green[0]
    assert unknown == [187, 187, 187]
    assert scores["t"][3] == "per-query AP@R 0.50" and scores["t"][2] == "no value"
    assert deck_points(frame, "no such column")["t"][0] == "zero"  # falls back to the class


def test_deck_chart_spec(frame):
    spec = json.loads(deck_chart(frame, points_layer(frame), query=2, neighbours=[0, 99]).to_json())
    points, lens = spec["layers"]
    assert points["id"] == POINTS_LAYER and points["pickable"] and len(points["data"]) == 6
    assert points["radiusUnits"] == "pixels"
    assert lens["id"] == LENS_LAYER and not lens["pickable"]
    assert [(row["x"], row["y"]) for row in lens["data"]] == [(0, 0), (0, 1)]  # 99 is no sample
    assert lens["data"][-1]["fill"] == [255, 212, 0, 255]  # the query, drawn last
    assert spec["views"][0]["@@type"] == "OrthographicView"
    assert spec["initialViewState"]["target"][:2] == pytest.approx([5, 5])
    assert len(json.loads(deck_chart(frame, points_layer(frame)).to_json())["layers"]) == 1


def test_deck_clicked():
    event = {"selection": {"indices": {POINTS_LAYER: [4]}, "objects": {POINTS_LAYER: [{"i": 7}]}}}
    assert deck_clicked(event) == 7
    assert deck_clicked({"selection": {"indices": {}, "objects": {}}}) is None
    assert deck_clicked(None) is None
