"""Flipped-label detection from embeddings: dmlviz's neighbour-consistency score against cleanlab's
kNN label-issue finder, on the same embeddings.

Embeddings of sklearn's digits (1,797 images, 10 classes), L2-normalised:

* ``pixels``: the raw 64 pixels;
* ``mlp``: the 32-d hidden layer of a 64-128-32-10 MLP trained on the *noisy* labels (40 full-batch
  Adam steps, early enough not to memorise the flips).

Labels: symmetric noise at 20 % and 40 % (``dmlviz.data.inject_label_noise``, seed 0). Detectors,
all with k = 10 neighbours:

* ``dmlviz``: ``neighbour_consistency``'s noise score, 1 - the share of the 10 nearest neighbours
  (faiss, cosine) that carry the sample's observed label;
* ``cleanlab_knn``: what ``Datalab.find_issues(features=..., issue_types={"label": {"k": 10}})``
  runs (its ``LabelIssueManager``; Datalab itself needs ``cleanlab[datalab]``, i.e. the
  ``datasets`` package, so the recipe is called directly): sklearn's ``KNeighborsClassifier(k+1)``
  on the features (Euclidean on normalised features = cosine) with the self vote removed, then
  ``CleanLearning().find_label_issues`` (confident learning); score = 1 - ``label_quality``,
  plus its ``is_label_issue`` flags;
* ``cleanlab_margin``: the same leave-one-out kNN class shares computed from our faiss graph,
  scored by ``cleanlab.rank.get_label_quality_scores(method="normalized_margin")``.

For each: ROC AUC and average precision against the flipped mask, the precision of the
round(rate * n) most suspect samples, and for cleanlab's flags their count, precision and recall.
cleanlab is an optional (dev) dependency: imported here only.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import machine_info, parse_args, write_result
from sklearn.metrics import average_precision_score, roc_auc_score

from dmlviz.data import inject_label_noise
from dmlviz.evaluate import knn, l2_normalise, neighbour_consistency, top_precision

K = 10


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def mlp_embeddings(pixels: np.ndarray, labels: np.ndarray, steps: int) -> np.ndarray:
    """The 32-d hidden layer of a small MLP trained with cross-entropy on ``labels`` (Adam written
    out: ``torch.optim`` would import torch._dynamo, seconds of a quick run)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.from_numpy(pixels), torch.from_numpy(labels)
    body = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32), torch.nn.ReLU()
    )
    net = torch.nn.Sequential(body, torch.nn.Linear(32, 10))
    params = list(net.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        with torch.no_grad():
            for p, m, v in zip(params, first, second, strict=True):
                m.mul_(0.9).add_(p.grad, alpha=0.1)
                v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                p -= 1e-2 * (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
                p.grad = None
    with torch.no_grad():
        return body(x).numpy()


def loo_knn_probabilities(embeddings: np.ndarray, observed: np.ndarray, classes: int) -> np.ndarray:
    """Leave-one-out kNN class shares from the faiss graph: row i = label histogram of i's k
    nearest neighbours (itself excluded) / k."""
    neighbours, _ = knn(embeddings, k=K)
    probabilities = np.zeros((len(embeddings), classes))
    np.add.at(probabilities, (np.arange(len(embeddings))[:, None], observed[neighbours]), 1.0 / K)
    return probabilities


def datalab_knn_probabilities(
    embeddings: np.ndarray, observed: np.ndarray, classes: int
) -> np.ndarray:
    """cleanlab's LabelIssueManager recipe: sklearn kNN (k + 1, the sample itself among them)
    class probabilities, corrected to leave the sample's own vote out."""
    from sklearn.neighbors import KNeighborsClassifier

    probabilities = KNeighborsClassifier(n_neighbors=K + 1).fit(embeddings, observed)
    probabilities = probabilities.predict_proba(embeddings)
    own = np.eye(classes)[observed]
    return (probabilities - own / (K + 1)) * (K + 1) / K


def scores(score: np.ndarray, flipped: np.ndarray) -> dict:
    return {
        "auroc": round(float(roc_auc_score(flipped, score)), 4),
        "ap": round(float(average_precision_score(flipped, score)), 4),
        "top_precision": round(top_precision(score, flipped), 4),
    }


def compare(features: str, embeddings: np.ndarray, noisy, classes: int) -> list[dict]:
    """One record per detector on these embeddings and labels."""
    from cleanlab.classification import CleanLearning
    from cleanlab.rank import get_label_quality_scores

    embeddings = l2_normalise(embeddings)
    observed, flipped = noisy.observed, noisy.flipped
    common = {"features": features, "noise_rate": noisy.rate, "n": len(observed), "k": K}
    records = []

    start = time.perf_counter()
    ours = neighbour_consistency(embeddings, observed, noisy.clean, flipped, k=K).per_sample
    seconds = time.perf_counter() - start
    records.append(
        {
            **common,
            "detector": "dmlviz",
            **scores(ours["noise_score"].to_numpy(), flipped),
            "seconds": round(seconds, 3),
        }
    )

    start = time.perf_counter()
    issues = CleanLearning().find_label_issues(
        labels=observed, pred_probs=datalab_knn_probabilities(embeddings, observed, classes)
    )
    seconds = time.perf_counter() - start
    flagged = issues["is_label_issue"].to_numpy()
    records.append(
        {
            **common,
            "detector": "cleanlab_knn",
            **scores(1.0 - issues["label_quality"].to_numpy(), flipped),
            "flagged": int(flagged.sum()),
            "flagged_precision": round(float(flipped[flagged].mean()), 4)
            if flagged.any()
            else None,
            "flagged_recall": round(float(flagged[flipped].mean()), 4),
            "seconds": round(seconds, 3),
        }
    )

    start = time.perf_counter()
    probabilities = loo_knn_probabilities(embeddings, observed, classes)
    quality = get_label_quality_scores(observed, probabilities, method="normalized_margin")
    seconds = time.perf_counter() - start
    records.append(
        {
            **common,
            "detector": "cleanlab_margin",
            **scores(1.0 - quality, flipped),
            "seconds": round(seconds, 3),
        }
    )
    return records


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    pixels, clean = digits()
    rates = (0.4,) if args.quick else (0.2, 0.4)
    records = []
    for rate in rates:
        noisy = inject_label_noise(clean, rate, kind="symmetric", seed=0, num_classes=10)
        for features, embeddings in (
            ("pixels", pixels),
            ("mlp", mlp_embeddings(pixels, noisy.observed, steps=40)),
        ):
            for record in compare(features, embeddings, noisy, classes=10):
                records.append(record)
                print(record, flush=True)
    payload = {"machine": machine_info(), "quick": args.quick, "detectors": records}
    print(write_result("noise_detector", payload))


if __name__ == "__main__":
    main()
