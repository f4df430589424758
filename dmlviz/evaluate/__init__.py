"""Evaluation: faiss kNN, retrieval metrics (global and per query), neighbour consistency."""

from dmlviz.evaluate.clustering import CLUSTERING, cluster_scores, kmeans_plan
from dmlviz.evaluate.consistency import ConsistencyResult, neighbour_consistency, top_precision
from dmlviz.evaluate.knn import knn, l2_normalise
from dmlviz.evaluate.replay import evaluate_replay, replay_summary, snapshot_metrics
from dmlviz.evaluate.retrieval import (
    RetrievalResult,
    per_class_means,
    retrieval_metrics,
)
from dmlviz.evaluate.run import evaluate_run

__all__ = [
    "CLUSTERING",
    "ConsistencyResult",
    "RetrievalResult",
    "cluster_scores",
    "evaluate_replay",
    "evaluate_run",
    "kmeans_plan",
    "knn",
    "l2_normalise",
    "neighbour_consistency",
    "per_class_means",
    "replay_summary",
    "retrieval_metrics",
    "snapshot_metrics",
    "top_precision",
]
