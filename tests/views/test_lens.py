"""The Query lens page's views: rankings (stored and live), the ranked list, rank changes."""

import math

import numpy as np
import pandas as pd
import pytest

from dmlviz.views.lens import (
    Ranking,
    live_ranking,
    query_card_html,
    rank_changes,
    ranked_list,
    ranked_strip_html,
    stored_ranking,
    summary_line,
)
from dmlviz.views.style import CORRECT, NOISY, WRONG


def test_stored_ranking_reads_its_row_and_metrics():
    neighbours = np.array([[1, 2], [0, 2], [0, 1]])
    sims = np.array([[0.9, 0.1], [0.9, 0.2], [0.3, 0.2]], dtype=np.float32)
    per_query = pd.DataFrame(
        {
            "query": [0, 1, 2],
            "ap@r": [1.0, 0.5, 0.0],
            "r": [1, 1, 0],
            "r_precision": [1, 0, 0],
            "first_correct_rank": [1, 2, np.nan],
        }
    )
    ranking = stored_ranking(1, neighbours, sims, per_query)
    assert list(ranking.neighbours) == [0, 2]
    assert ranking.stats["ap@r"] == 0.5 and ranking.stats["first_correct_rank"] == 2
    assert math.isnan(stored_ranking(2, neighbours, sims, per_query).stats["first_correct_rank"])
    assert math.isnan(stored_ranking(0, neighbours, sims, None).stats["ap@r"])
    with pytest.raises(ValueError, match="outside"):
        stored_ranking(3, neighbours, sims)


def test_live_ranking_matches_brute_force():
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((30, 4)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.repeat(np.arange(6), 5)
    ranking = live_ranking(embeddings, labels, 7, top_k=10)
    sims = embeddings @ embeddings[7]
    sims[7] = -np.inf
    order = np.argsort(-sims, kind="stable")[:10]
    assert list(ranking.neighbours) == list(order)
    correct = labels[np.argsort(-sims, kind="stable")[:29]] == labels[7]
    assert ranking.stats["first_correct_rank"] == np.flatnonzero(correct)[0] + 1
    r = 4
    hits = np.flatnonzero(correct[:r])
    expected = sum((i + 1) / (rank + 1) for i, rank in enumerate(hits)) / r
    assert ranking.stats["ap@r"] == pytest.approx(expected)
    assert ranking.source == "live"


def test_ranked_list_marks_correct_and_noisy():
    labels = np.array([0, 0, 1, 1])
    observed = np.array([0, 1, 1, 1])  # sample 1 was trained as class 1
    ranking = Ranking(0, np.array([1, 2, 3]), np.array([0.9, 0.5, 0.4]))
    table = ranked_list(ranking, labels, ["cat", "dog"], observed, k=2)
    assert list(table["rank"]) == [1, 2]
    assert list(table["correct"]) == [True, False]
    assert list(table["noisy"]) == [True, False]
    assert table.loc[0, "observed_class"] == "dog"
    gallery = ranked_list(ranking, labels, None, None, k=3, ref_labels=np.array([0, 1, 0, 0]))
    assert list(gallery["correct"]) == [False, True, True] and "noisy" not in gallery


def test_rank_changes():
    first = pd.DataFrame({"index": [5, 6, 7], "rank": [1, 2, 3], "correct": [True, False, True]})
    second = pd.DataFrame({"index": [7, 5, 9], "rank": [1, 2, 3], "correct": [True, True, False]})
    changes = rank_changes(first, second).set_index("index")
    assert changes.loc[7, "move"] == "↑ 2" and changes.loc[7, "change"] == 2
    assert changes.loc[5, "move"] == "↓ 1"
    assert changes.loc[9, "move"] == "new" and changes.loc[6, "move"] == "dropped"
    assert not changes.loc[6, "correct"]


def test_strip_html_colours_and_flags():
    table = pd.DataFrame(
        {
            "rank": [1, 2],
            "index": [3, 4],
            "similarity": [0.9, 0.8],
            "class": ["a<b", "c"],
            "correct": [True, False],
            "noisy": [False, True],
            "observed_class": ["a<b", "a<b"],
        }
    )
    html = ranked_strip_html(table, ["data:1", "data:2"], {4: "↑ 3"})
    assert CORRECT in html and WRONG in html
    assert "⚠ trained as a&lt;b" in html and "↑ 3" in html and "a<b" not in html
    card = query_card_html("data:q", 9, "seven", "one")
    assert "query #9" in card and "trained as one" in card
    assert "trained as" not in query_card_html("data:q", 9, "seven", "seven")
    assert NOISY  # the flag colour exists
    # plain str, so the CSS the notebook widgets put before a card stays markup
    assert ("<style>" + card).startswith("<style>") and ("<style>" + html).startswith("<style>")


def test_summary_line():
    assert "nearest neighbour" in summary_line({"first_correct_rank": 1.0, "r": 3})
    assert "rank 4" in summary_line({"first_correct_rank": 4.0, "r": 3})
    assert "No sample" in summary_line({"first_correct_rank": math.nan, "r": 3})
    assert "cannot be retrieved" in summary_line({"first_correct_rank": math.nan, "r": 0})


def test_rank_text_shows_expected_ranks_of_ties():
    from dmlviz.views.lens import rank_text

    assert rank_text(3.0) == "3" and rank_text(math.nan) == "none"
    assert rank_text(1.5) == "1.5 (tied)"
    assert "rank 2.5 (tied)" in summary_line({"first_correct_rank": 2.5, "r": 3})


def test_ap_at_r_steps_sum_to_the_evaluated_ap_at_r():
    from dmlviz.evaluate import retrieval_metrics
    from dmlviz.views.lens import ap_at_r_figure, ap_at_r_steps

    relevant = np.array([True, False, True, False, False, True, True])
    angles = np.linspace(0.1, 1.5, len(relevant))
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    result = retrieval_metrics(np.array([[1.0, 0.0]], np.float32), np.array([0]), gallery,
                               np.where(relevant, 0, 1), ks=(1,), clustering=False)  # fmt: skip
    steps = ap_at_r_steps(relevant, r=4)
    assert len(steps) == 4 and steps["precision"].tolist() == [1, 0.5, 2 / 3, 0.5]
    assert steps["term"].sum() == pytest.approx(result.metrics["map@r"])
    assert ap_at_r_figure(steps).data[1].y[-1] == pytest.approx(result.metrics["map@r"])


def test_worst_query_and_query_classes():
    from dmlviz.views.lens import query_classes, worst_query

    per_query = pd.DataFrame({"query": [0, 1, 2], "ap@r": [0.5, 0.1, np.nan]})
    assert worst_query(per_query) == 1
    assert worst_query(per_query.assign(**{"ap@r": np.nan})) == 0 and worst_query(None) == 0
    labels, observed = np.array([0, 1]), np.array([1, 1])
    assert query_classes(0, labels, observed, ["cat", "dog"]) == ("cat", "dog")
    assert query_classes(1, labels, None, ["cat", "dog"]) == ("dog", None)
