"""The k-means behind NMI / AMI: which plan applies when, what the metrics say, bad values."""

import faiss
import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from dmlviz.evaluate import CLUSTERING, cluster_scores, clustering, kmeans_plan, retrieval_metrics
from dmlviz.evaluate.clustering import adjusted_mutual_info, expected_mutual_information
from dmlviz.validate import InvalidValue


def clustered(n=400, classes=50, d=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(classes), n // classes))
    centres = rng.standard_normal((classes, d)).astype(np.float32)
    return centres[labels] + 0.8 * rng.standard_normal((len(labels), d)).astype(np.float32), labels


def test_full_and_off_are_what_they_say():
    assert kmeans_plan("full", 100_000, 100_000, 12_500, 512) == (20, "kmeans 20 iterations (PML)")
    assert kmeans_plan("full", 100_000, 100_000, 12_500, 512, exact=False).iterations == 20
    assert kmeans_plan("off", 500, 500, 30, 16) == (None, "off")


def test_auto_cuts_iterations_to_the_search_time():
    # 40 references per class pay for 19 iterations plus the final assignment, at PASS_COST 2
    plan = kmeans_plan("auto", 100_000, 100_000, 2_500, 512)
    assert plan.iterations == 19
    assert (
        plan.method.startswith("kmeans 19 iterations (PML: 20;")
        and "clustering full" in plan.method
    )
    # 42 or more references per class pay for PML's 20: the plan is the full one
    assert kmeans_plan("auto", 100_000, 100_000, 2_000, 512) == kmeans_plan("full", 1, 1, 1, 1)
    # a gallery: the search is queries x references, the k-means clusters the queries
    assert kmeans_plan("auto", 20_000, 200_000, 10_000, 512).iterations == 9


def test_auto_runs_the_full_kmeans_when_it_is_cheap():
    assert kmeans_plan("auto", 500, 500, 100, 16).iterations == 20
    assert kmeans_plan("auto", 500, 500, 100, 16, exact=False).iterations == 20


def test_auto_skips_and_says_why():
    few = kmeans_plan("auto", 100_000, 100_000, 12_500, 512)  # 8 per class: 3 iterations
    assert few.iterations is None
    assert few.method.startswith("skipped: 12500 classes") and "clustering full" in few.method
    approximate = kmeans_plan("auto", 100_000, 100_000, 12_500, 512, exact=False)
    assert approximate.iterations is None and "approximate" in approximate.method


def test_metrics_carry_the_plan(monkeypatch):
    x, labels = clustered(n=600, classes=25)
    monkeypatch.setattr(clustering, "CHEAP_MULTIPLY_ADDS", 0)  # small data, large-data rule
    metrics = retrieval_metrics(x, labels, top_k=5).metrics
    assert metrics["nmi_method"].startswith("kmeans 11 iterations")
    assert (metrics["nmi"], metrics["ami"]) == cluster_scores(x, labels, 11)
    skipped = retrieval_metrics(x, labels, top_k=5, exact=False).metrics
    assert skipped["nmi"] is None and skipped["ami"] is None
    assert skipped["nmi_method"].startswith("skipped")
    off = retrieval_metrics(x, labels, top_k=5, clustering=False).metrics
    assert off["nmi"] is None and off["nmi_method"] == "off"


def test_full_equals_the_pml_computation():
    x, labels = clustered(seed=1)
    normalised = x / np.linalg.norm(x, axis=1, keepdims=True)
    kmeans = faiss.Kmeans(x.shape[1], 50, niter=20, min_points_per_centroid=1)
    kmeans.train(normalised)
    clusters = kmeans.index.search(normalised, 1)[1][:, 0]
    metrics = retrieval_metrics(x, labels, top_k=5, clustering="full").metrics
    assert metrics["nmi"] == normalized_mutual_info_score(labels, clusters)
    # the expected mutual information is summed in another order: equal to rounding
    assert metrics["ami"] == pytest.approx(adjusted_mutual_info_score(labels, clusters), abs=1e-12)
    assert metrics["nmi_method"] == "kmeans 20 iterations (PML)"


@pytest.mark.parametrize(
    ("n", "classes", "clusters", "agree"),
    [(100, 5, 7, 0.0), (500, 50, 40, 0.6), (1000, 3, 200, 0.3), (30, 30, 30, 0.5),
     (2000, 10, 10, 0.9), (300, 1, 5, 0.5), (300, 4, 1, 0.5), (3000, 400, 400, 0.7)],
)  # fmt: skip
def test_adjusted_mutual_info_is_sklearns(n, classes, clusters, agree):
    rng = np.random.default_rng(n + classes)
    labels = rng.integers(0, classes, n)
    found = np.where(rng.random(n) < agree, labels, rng.integers(0, clusters, n))
    expected = adjusted_mutual_info_score(labels, found)
    assert adjusted_mutual_info(labels, found) == pytest.approx(expected, abs=1e-12)


def test_adjusted_mutual_info_special_cases_are_sklearns():
    for labels, found in [
        (np.arange(10), np.arange(10)),
        (np.zeros(5, int), np.zeros(5, int)),
        (np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])),
        (np.array([0, 0, 0, 0]), np.array([0, 1, 2, 3])),
        (np.array(["a", "b", "a", "c"]), np.array([2, 2, 1, 0])),
    ]:
        expected = adjusted_mutual_info_score(labels, found)
        assert adjusted_mutual_info(labels, found) == pytest.approx(expected, abs=1e-12)


def test_expected_mutual_information_in_small_passes_is_the_same():
    rng = np.random.default_rng(3)
    classes, clusters = rng.integers(1, 40, 60), rng.integers(1, 40, 70)
    n = int(classes.sum())
    clusters = np.maximum(1, np.round(clusters * n / clusters.sum())).astype(int)
    whole = expected_mutual_information(classes, clusters, n)
    assert expected_mutual_information(classes, clusters, n, chunk=7) == pytest.approx(whole)


def test_bad_values_are_named():
    with pytest.raises(InvalidValue, match=r"clustering='fast' is invalid: choose one of auto"):
        kmeans_plan("fast", 10, 10, 2, 2)
    with pytest.raises(ValueError, match="clustering='fast'"):
        retrieval_metrics(*clustered(), clustering="fast")
    with pytest.raises(ValueError, match="iterations=0"):
        cluster_scores(*clustered(), iterations=0)


def test_cli_choices_are_the_library_ones():
    from dmlviz.cli import evaluate

    assert evaluate.CLUSTERING == CLUSTERING
