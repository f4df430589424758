"""Training: one loop for every loss, writing a run directory (see docs/run-format.md).

``default_config(dataset, loss)`` gives a full config, ``train(config, out)`` trains and returns
the ``Run``, ``embed_run`` / ``finish_run`` write its embeddings (and evaluation).
"""

from dmlviz.train.config import (
    AMP_MODES,
    BASE_CONFIG,
    DATASET_DEFAULTS,
    OPTIMIZERS,
    PRESET_SOURCES,
    RESUMABLE_CHANGES,
    SCHEDULES,
    ConfigError,
    default_config,
    resolve_config,
    validate_config,
)
from dmlviz.train.device import amp_dtype, pick_device
from dmlviz.train.embed import compute_embeddings, embed_run, finish_run, run_splits
from dmlviz.train.loop import train, train_step

__all__ = [
    "AMP_MODES",
    "BASE_CONFIG",
    "DATASET_DEFAULTS",
    "OPTIMIZERS",
    "PRESET_SOURCES",
    "RESUMABLE_CHANGES",
    "SCHEDULES",
    "ConfigError",
    "amp_dtype",
    "compute_embeddings",
    "default_config",
    "embed_run",
    "finish_run",
    "pick_device",
    "resolve_config",
    "run_splits",
    "train",
    "train_step",
    "validate_config",
]
