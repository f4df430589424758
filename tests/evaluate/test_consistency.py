"""Neighbour consistency: a hand-built example, the undefined detector case, tie-aware precision."""

import numpy as np
import pytest

from dmlviz.evaluate import neighbour_consistency, top_precision


def on_circle(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def two_groups():
    """Group A at 0-3 degrees (clean 0), group B at 90-93 degrees (clean 1); sample 0 flipped to 1."""
    x = on_circle([0, 1, 2, 3, 90, 91, 92, 93])
    clean = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    observed = clean.copy()
    observed[0] = 1
    return x, observed, clean, observed != clean


def test_hand_built_example():
    x, observed, clean, flipped = two_groups()
    result = neighbour_consistency(x, observed, clean, flipped, k=3)
    table = result.per_sample
    # sample 0's neighbours (1, 2, 3) all say 0 while it says 1; their clean labels agree with its own
    np.testing.assert_allclose(table["consistency_observed"], [0, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1])
    np.testing.assert_allclose(table["consistency_clean"], np.ones(8))
    np.testing.assert_allclose(table["noise_score"], [1, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0])
    assert list(table.columns) == [
        "index",
        "observed",
        "clean",
        "flipped",
        "consistency_observed",
        "consistency_clean",
        "noise_score",
    ]
    s = result.summary
    assert (s["k"], s["n"], s["n_flipped"], s["noise_rate"]) == (3, 8, 1, 1 / 8)
    assert s["consistency_clean"] == pytest.approx(6 / 7)
    assert s["consistency_flipped"] == 0.0
    assert s["clean_label_consistency"] == 1.0
    assert s["detector_auroc"] == 1.0 and s["detector_ap"] == 1.0 and s["top_precision"] == 1.0


def test_detector_undefined_without_noise():
    x, _, clean, _ = two_groups()
    s = neighbour_consistency(x, clean, clean, np.zeros(8, bool), k=3).summary
    assert s["n_flipped"] == 0 and s["consistency_flipped"] is None
    assert s["detector_auroc"] is None and s["detector_ap"] is None and s["top_precision"] is None


def test_top_precision_splits_ties():
    score = np.array([1.0, 0.5, 0.5, 0.0])
    positive = np.array([True, True, False, False])
    assert top_precision(score, positive) == pytest.approx(0.75)
    assert top_precision(score, positive, count=1) == 1.0


def test_bad_arguments():
    x, observed, clean, flipped = two_groups()
    with pytest.raises(ValueError, match="k must be"):
        neighbour_consistency(x, observed, clean, flipped, k=8)
    with pytest.raises(ValueError, match="observed"):
        neighbour_consistency(x, observed[:5], clean, flipped)
