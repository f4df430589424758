"""The metric catalogue: every entry names a number dmlviz really stores, and its readers agree."""

import numpy as np
import pytest

from dmlviz.evaluate.consistency import neighbour_consistency
from dmlviz.evaluate.replay import REPLAY_COLUMNS
from dmlviz.evaluate.retrieval import PER_QUERY_COLUMNS, retrieval_metrics
from dmlviz.registry.metrics import (
    CLI,
    METRICS,
    REPORT,
    TABLE,
    label,
    register_metric,
    replay_curves,
    shown_in,
    summary_metrics,
)
from dmlviz.runs.files import METRIC_SOURCES


def _retrieval():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    return retrieval_metrics(rng.normal(size=(20, 8)).astype(np.float32), labels)


def test_retrieval_metrics_are_what_evaluation_stores():
    result = _retrieval()
    for metric in summary_metrics():
        if metric.source == "test":
            assert metric.key in result.metrics, metric.key
    for metric in METRICS.values():
        if metric.per_query is not None:
            assert metric.per_query in PER_QUERY_COLUMNS and metric.key in result.metrics


def test_consistency_and_replay_metrics_are_what_their_files_hold():
    rng = np.random.default_rng(0)
    clean = np.repeat(np.arange(4), 10)
    observed = clean.copy()
    observed[:6] = (observed[:6] + 1) % 4
    flipped = observed != clean
    summary = neighbour_consistency(rng.normal(size=(40, 8)), observed, clean, flipped, k=5).summary
    for metric in summary_metrics():
        if metric.source == "consistency":
            assert metric.key in summary, metric.key
    assert {m.key for m in replay_curves()} <= set(REPLAY_COLUMNS)


def test_every_summary_metric_names_a_run_file_and_training_ones_a_logged_key():
    for metric in summary_metrics():
        assert metric.source in METRIC_SOURCES
        assert (metric.source == "training") == (metric.best_of is not None)
        if metric.best_of is not None:
            assert metric.best_of in METRICS


def test_what_the_views_and_cli_show_comes_from_the_catalogue():
    from dmlviz.cli.runs import COLUMNS
    from dmlviz.experiments.reports import SUMMARY_METRICS
    from dmlviz.views.replay import CURVES
    from dmlviz.views.runs import TABLE_COLUMNS

    assert tuple(m.key for m in shown_in(REPORT)) == SUMMARY_METRICS
    assert [m.key for m in shown_in(TABLE)] == [k for k in TABLE_COLUMNS if k in METRICS]
    assert [m.key for m in shown_in(CLI)] == [key for _, key, _ in COLUMNS if key in METRICS]
    assert {column for column, _, _ in CURVES} == {m.key for m in replay_curves()}
    shown = {m.key for place in (TABLE, CLI, REPORT) for m in shown_in(place)}
    assert shown <= {m.key for m in summary_metrics()}  # a shown column is in every run's row


def test_labels_formats_and_registration_checks():
    assert label("map@r") == "MAP@R" and label("not-a-metric") == "not-a-metric"
    assert METRICS["map@r"].format(0.123456) == "0.1235"
    assert METRICS["memorised_end"].higher_is_better is False
    with pytest.raises(ValueError, match="registered twice"):
        register_metric(key="map@r", label="x", short="x", help="x")
    with pytest.raises(ValueError, match="unknown place"):
        register_metric(key="new", label="x", short="x", help="x", shown=("nowhere",))
    assert "new" not in METRICS
