"""Datasets, class-disjoint splits, m-per-class batches and label-noise injection.

``load_dataset(name, root, split, ...)`` returns a ``RetrievalDataset`` yielding
``(image, label, index)``; ``MPerClassBatchSampler`` makes the batches a metric-learning loss needs;
``inject_label_noise`` corrupts a training split's labels for robustness experiments.
"""

from dmlviz.data.dataset import ArrayDataset, ImageFileDataset, RetrievalDataset
from dmlviz.data.listing import (
    BadImagesError,
    DatasetFormatError,
    DatasetNotFoundError,
    SplitLayout,
)
from dmlviz.data.load import load_dataset, split_layout
from dmlviz.data.noise import NOISE_KINDS, NoisyLabels, inject_label_noise
from dmlviz.data.sampler import MPerClassBatchSampler
from dmlviz.data.transforms import eval_transform, train_transform
from dmlviz.registry.datasets import DATASETS, PROTOCOLS, TEST_ROOT_DATASETS

__all__ = [
    "DATASETS",
    "NOISE_KINDS",
    "PROTOCOLS",
    "TEST_ROOT_DATASETS",
    "ArrayDataset",
    "BadImagesError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "ImageFileDataset",
    "MPerClassBatchSampler",
    "NoisyLabels",
    "RetrievalDataset",
    "SplitLayout",
    "eval_transform",
    "inject_label_noise",
    "load_dataset",
    "split_layout",
    "train_transform",
]
