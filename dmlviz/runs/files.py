"""The run format's files, named once: every path inside a run folder, relative to it.

``Run`` reads and writes them, ``dmlviz.runs.walk`` tells a run by them, ``Run.summary()`` reads
``SUMMARY_FILES`` and the dashboard's caches watch them (``split_files``, ``replay_files``).
docs/run-format.md describes each.
"""

from __future__ import annotations

CONFIG = "config.json"
STATUS = "status.json"
MODEL = "model.safetensors"
TRAINER_STATE = "trainer_state.pt"
METRICS = "metrics.jsonl"
LABELS = "labels.npz"
LOCK = "train.lock"
EMBEDDINGS = "embeddings"
EVAL = "eval"
PROJECTIONS = "projections"
TENSORBOARD = "tensorboard"
CONSISTENCY_SUMMARY = f"{EVAL}/consistency.json"
CONSISTENCY_TABLE = f"{EVAL}/consistency.parquet"
REPLAY = "replay"  # the probe set's embeddings during training (``dmlviz.train.replay``)
REPLAY_PROBE = f"{REPLAY}/probe.npz"
REPLAY_METRICS = f"{EVAL}/replay.parquet"
REPLAY_SUMMARY = f"{EVAL}/replay.json"

# What a run leaves in its folder besides config.json: a folder holding any of them is no
# place for a new run (its files would be mixed with the old run's).
RUN_FILES = (STATUS, MODEL, TRAINER_STATE, METRICS, LABELS, EMBEDDINGS, EVAL, PROJECTIONS,
             TENSORBOARD, REPLAY)  # fmt: skip
# The files that make a folder a run (``dmlviz.runs.walk.is_run``).
RUN_MARKERS = (CONFIG, MODEL, METRICS, STATUS, TRAINER_STATE)
# The methods a run may hold a map of (``dmlviz.project``), the one a page prefers first.
MAP_METHODS = ("umap", "pca")


def embeddings_file(split: str) -> str:
    """The file holding ``split``'s embeddings and labels."""
    return f"{EMBEDDINGS}/{split}.npz"


def eval_metrics_file(split: str) -> str:
    """The file holding ``split``'s global retrieval metrics (written last: marks it evaluated)."""
    return f"{EVAL}/{split}_metrics.json"


def per_query_file(split: str) -> str:
    """The file holding ``split``'s per-query table."""
    return f"{EVAL}/{split}_per_query.parquet"


def neighbours_file(split: str) -> str:
    """The file holding ``split``'s top-K neighbour indices and similarities."""
    return f"{EVAL}/{split}_neighbours.npz"


def projection_stem(split: str, method: str) -> str:
    """``split``'s ``method`` map (umap, pca) without suffix: ``.npy`` coordinates, ``.json`` meta."""
    return f"{PROJECTIONS}/{split}_{method}"


def projection_file(split: str, method: str) -> str:
    """The file holding ``split``'s ``method`` map coordinates."""
    return f"{projection_stem(split, method)}.npy"


def umap_progress_file(split: str) -> str:
    """The progress record of ``split``'s background UMAP (``dmlviz.project.background``)."""
    return f"{projection_stem(split, 'umap')}.progress.json"


def umap_lock_file(split: str) -> str:
    """The lock held while ``split``'s background UMAP is computed."""
    return f"{PROJECTIONS}/.{split}_umap.lock"


def umap_log_file(split: str) -> str:
    """The output of ``split``'s background UMAP process."""
    return f"{projection_stem(split, 'umap')}.log"


def replay_snapshot_file(epoch: int) -> str:
    """The file holding the replay snapshot after ``epoch``."""
    return f"{REPLAY}/epoch_{int(epoch):04d}.npz"


def replay_layout_stem(method: str = "umap") -> str:
    """The aligned replay layout made by ``method`` without suffix (``.npz`` frames, ``.json``)."""
    return f"{PROJECTIONS}/replay_{method}"


def replay_layout_file(method: str = "umap") -> str:
    """The file holding the aligned replay layout made by ``method``."""
    return f"{replay_layout_stem(method)}.npz"


# The file of each source a summary metric names (``dmlviz.registry.metrics.Metric.source``).
METRIC_SOURCES = {
    "test": eval_metrics_file("test"),
    "train": eval_metrics_file("train"),
    "consistency": CONSISTENCY_SUMMARY,
    "replay": REPLAY_SUMMARY,
    "training": METRICS,
}


def eval_files(split: str) -> tuple[str, ...]:
    """The files of ``split``'s evaluation: global metrics, per-query table, neighbours."""
    return (eval_metrics_file(split), per_query_file(split), neighbours_file(split))


def split_files(split: str, methods: tuple[str, ...] = MAP_METHODS) -> tuple[str, ...]:
    """Every file that holds something of ``split`` (embeddings, evaluation, labels, neighbour
    consistency, the ``methods`` maps)."""
    names = (embeddings_file(split), *eval_files(split), LABELS, CONSISTENCY_TABLE)
    return (*names, *(projection_file(split, method) for method in methods))


def replay_files(method: str = "umap") -> tuple[str, ...]:
    """Everything of a run's replay the Replay page reads (the snapshots' folder, whose time a new
    snapshot changes, the probe, the per-snapshot metrics, the ``method`` layout): a cache key
    of a run's replay."""
    return (REPLAY, REPLAY_PROBE, REPLAY_METRICS, replay_layout_file(method))
