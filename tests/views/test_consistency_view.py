"""The Neighbour consistency page's views."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dmlviz.views.consistency import (
    across_runs,
    consistency_histogram,
    detector_roc,
    noisiest_run,
    precision_at,
    suspicious_gallery_html,
    suspicious_samples,
)


@pytest.fixture
def per_sample():
    rng = np.random.default_rng(0)
    n = 40
    flipped = np.zeros(n, bool)
    flipped[:8] = True
    consistency = np.where(flipped, rng.uniform(0, 0.5, n), rng.uniform(0.3, 1, n))
    return pd.DataFrame(
        {
            "index": np.arange(n),
            "observed": np.arange(n) % 3,
            "clean": (np.arange(n) + flipped) % 3,
            "flipped": flipped,
            "consistency_observed": consistency,
            "consistency_clean": consistency,
            "noise_score": 1 - consistency,
        }
    )


def test_histogram_has_two_groups(per_sample):
    figure = consistency_histogram(per_sample, k=10)
    assert [t.name for t in figure.data] == ["label kept (32)", "label flipped (8)"]
    assert figure.data[0].histnorm == "percent"
    assert "10 nearest" in figure.layout.xaxis.title.text


def test_roc_matches_sklearn(per_sample):
    figure, auroc = detector_roc(per_sample)
    assert auroc == pytest.approx(roc_auc_score(per_sample["flipped"], per_sample["noise_score"]))
    assert f"{auroc:.3f}" in figure.data[1].name


def test_roc_without_flips_is_explained(per_sample):
    figure, auroc = detector_roc(per_sample.assign(flipped=False))
    assert auroc is None
    assert "nothing to detect" in figure.layout.annotations[0].text


def test_suspicious_samples_sorted(per_sample):
    table = suspicious_samples(per_sample, ["a", "b", "c"], n=5)
    assert len(table) == 5
    assert list(table["noise_score"]) == sorted(table["noise_score"], reverse=True)
    assert set(table["observed_class"]) <= {"a", "b", "c"}
    html = suspicious_gallery_html(table, ["data:x"] * 5)
    assert html.count("dmlviz-card") == 5 and "trained:" in html


def test_gallery_claims_nothing_without_clean_labels(per_sample):
    table = suspicious_samples(per_sample.assign(flipped=True), ["a", "b", "c"], n=3)
    html = suspicious_gallery_html(table, ["data:x"] * 3, clean_known=False)
    assert html.count("trained:") == 3
    assert "clean:" not in html and "flipped" not in html and "false alarm" not in html
    assert "clean:" in suspicious_gallery_html(table, ["data:x"] * 3)


def test_precision_at(per_sample):
    assert precision_at(per_sample, 8) == pytest.approx(
        per_sample.nlargest(8, "noise_score")["flipped"].mean()
    )


def test_precision_at_counts_ties_like_the_stored_summary():
    from dmlviz.evaluate import neighbour_consistency, top_precision

    # four samples tied at the cut, half of them flipped: the page and the evaluation agree on
    # the expected share (not on whichever tied sample comes first by index)
    table = pd.DataFrame(
        {"noise_score": [0.9, 0.5, 0.5, 0.5, 0.5, 0.1], "flipped": [1, 0, 0, 1, 1, 0]}
    ).astype({"flipped": bool})
    expected = (1 + 1 * 2 / 4) / 2
    assert precision_at(table, 2) == pytest.approx(expected)
    assert precision_at(table, 2) == top_precision(table["noise_score"], table["flipped"], 2)
    rng = np.random.default_rng(1)
    clean = np.repeat(np.arange(4), 6)
    embeddings = (rng.normal(size=(24, 8)) + 3 * np.eye(8)[clean]).astype(np.float32)
    flipped = rng.random(24) < 0.3
    observed = np.where(flipped, (clean + 1) % 4, clean)
    result = neighbour_consistency(embeddings, observed, clean, flipped, k=2)
    stored = result.summary["top_precision"]
    assert result.per_sample["noise_score"].duplicated().any()  # ties at k = 2
    shown = precision_at(result.per_sample, int(result.per_sample["flipped"].sum()))
    assert shown == pytest.approx(stored)


def test_across_runs_one_chart_per_metric():
    runs = pd.DataFrame(
        [
            {
                "loss": loss,
                "noise_rate": rate,
                "seed": 0,
                "state": "finished",
                "map@r": 0.5,
                "recall@1": 0.8,
                "consistency_clean": 0.9,
                "consistency_flipped": 0.3,
                "detector_auroc": 0.8 if rate else None,
                "preset_source": "paper defaults",
            }
            for loss in ("contextual", "rll")
            for rate in (0.0, 0.4)
        ]
    )
    figures = across_runs(runs)
    assert len(figures) == 3
    assert all(len(figure.data) == 2 for figure in figures)


def test_noisiest_run_of_the_same_loss():
    runs = pd.DataFrame(
        {
            "path": ["ctx0", "ctx20", "ctx40", "ctx40-pair", "rll60", "ctx80-other", "ctx90-raw"],
            "dataset": ["digits"] * 5 + ["omniglot", "digits"],
            "loss": ["contextual"] * 4 + ["rll"] + ["contextual"] * 2,
            "noise_kind": ["symmetric"] * 3 + ["pair"] + ["symmetric"] * 3,
            "noise_rate": [0.0, 0.2, 0.4, 0.4, 0.6, 0.8, 0.9],
            "seed": [0] * 7,
            "consistency_flipped": [np.nan, 0.3, 0.2, 0.1, 0.2, 0.1, np.nan],
        }
    )
    row = runs.iloc[0].to_dict()
    # the noisiest evaluated contextual run on digits, same noise kind first; not the unevaluated
    # 90 % run, not another dataset's or loss's
    assert noisiest_run(runs, row)["path"] == "ctx40"
    assert noisiest_run(runs[runs["path"] != "ctx40"], row)["path"] == "ctx40-pair"
    assert noisiest_run(runs.iloc[[0, 4, 5]], row) is None
    assert noisiest_run(runs.iloc[:0], row) is None


def test_clean_labels_are_known_unless_imported_without_them():
    from dmlviz.views.consistency import clean_labels_known

    assert clean_labels_known(0.0) and clean_labels_known(0.4)
    assert not clean_labels_known(None) and not clean_labels_known(float("nan"))


def test_gallery_escapes_class_names_and_adds_to_markup(per_sample):
    table = suspicious_samples(per_sample, ["<a>", "b&c", "d"], n=3)
    html = suspicious_gallery_html(table, ["data:x"] * 3)
    assert "<a>" not in html and "b&c" not in html
    assert ("<style>" + html).startswith("<style><div")  # a str, so CSS before it is kept
