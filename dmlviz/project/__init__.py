"""2-D maps of a run's embeddings: UMAP / PCA, cached in the run directory, aligned across runs."""

from dmlviz.project.align import align_maps, align_runs, same_samples
from dmlviz.project.cache import project_run
from dmlviz.project.maps import pca_projection, trustworthiness_score, umap_projection
from dmlviz.project.replay import aligned_layouts, project_replay
from dmlviz.runs.files import MAP_METHODS

__all__ = [
    "MAP_METHODS",
    "align_maps",
    "aligned_layouts",
    "align_runs",
    "pca_projection",
    "project_replay",
    "project_run",
    "same_samples",
    "trustworthiness_score",
    "umap_projection",
]
