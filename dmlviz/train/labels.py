"""The labels a run trains on: its train split's labels after label noise, kept in labels.npz.

A new run draws them (``inject_label_noise`` as the config says) and saves them; a resumed run
reads them back, and a corrupt labels.npz is drawn again: the config's noise settings make the
same labels exactly.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dmlviz.data import NoisyLabels, inject_label_noise
from dmlviz.runs import Run, RunError
from dmlviz.runs.run import LABELS

NOISE_FEATURE_SIZE = 16  # nearest_class noise compares images pooled to at most 16 x 16 px


def observed_labels(run: Run, config: dict[str, Any], train_set, write: bool) -> NoisyLabels:
    """The run's labels for ``train_set``: read from labels.npz, else drawn now (and saved when
    ``write``: the process that writes the run). Raises ``RunError`` when the train split no
    longer has as many images as the saved labels (the dataset changed)."""
    try:
        noisy = run.labels()
    except RunError as error:  # corrupt: the config's noise settings rebuild it exactly
        warnings.warn(f"{error}; rebuilding it", stacklevel=2)
        noisy = None
    if noisy is None:
        noisy = _noisy_labels(config, train_set, run)
        if write:
            run.save_labels(noisy)
    elif len(noisy.observed) != len(train_set):
        raise RunError(
            f"{run.path / LABELS} has {len(noisy.observed)} labels but the train split "
            f"has {len(train_set)} images: the dataset changed; retrain this run"
        )
    return noisy


def _noisy_labels(config: dict[str, Any], train_set, run: Run) -> NoisyLabels:
    """The train split's labels after ``inject_label_noise`` as the config says."""
    features = None
    if config["noise_rate"] > 0 and config["noise_kind"] == "nearest_class":
        plain = run.dataset("train") if config["augment"] else train_set
        features = _image_features(plain)
    return inject_label_noise(
        np.asarray(train_set.labels),
        rate=config["noise_rate"],
        kind=config["noise_kind"],
        seed=config["noise_seed"],
        num_classes=train_set.num_classes,
        features=features,
    )


def _image_features(dataset) -> np.ndarray:
    """Flattened images (pooled to at most ``NOISE_FEATURE_SIZE`` px a side), (n, features)."""
    loader = DataLoader(dataset, batch_size=256, shuffle=False)
    rows = []
    for images, *_ in loader:
        if images.shape[-1] > NOISE_FEATURE_SIZE:
            images = torch.nn.functional.adaptive_avg_pool2d(images, NOISE_FEATURE_SIZE)
        rows.append(images.flatten(1))
    return torch.cat(rows).numpy()
