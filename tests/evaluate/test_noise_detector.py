"""Our flipped-label detector against cleanlab's kNN label-issue finder on the same embeddings.

cleanlab is a dev-only dependency: imported inside the test, skipped when absent.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from dmlviz.data import inject_label_noise
from dmlviz.evaluate import l2_normalise, neighbour_consistency


def test_matches_cleanlab_knn_label_quality_on_digits():
    pytest.importorskip("cleanlab")
    from cleanlab.classification import CleanLearning

    digits = load_digits()
    x = l2_normalise(digits.data)
    noisy = inject_label_noise(digits.target, 0.3, kind="symmetric", seed=0, num_classes=10)
    k = 10
    ours = neighbour_consistency(x, noisy.observed, noisy.clean, noisy.flipped, k=k)

    # cleanlab Datalab's label-issue recipe: kNN(k + 1) class shares minus the sample's own vote
    probabilities = KNeighborsClassifier(n_neighbors=k + 1).fit(x, noisy.observed).predict_proba(x)
    probabilities = (probabilities - np.eye(10)[noisy.observed] / (k + 1)) * (k + 1) / k
    issues = CleanLearning().find_label_issues(labels=noisy.observed, pred_probs=probabilities)
    theirs = roc_auc_score(noisy.flipped, 1.0 - issues["label_quality"])

    assert ours.summary["detector_auroc"] > 0.95
    assert ours.summary["detector_auroc"] == pytest.approx(theirs, abs=2e-3)
    flagged = issues["is_label_issue"].to_numpy()
    assert ours.summary["top_precision"] >= noisy.flipped[flagged].mean() - 0.05
