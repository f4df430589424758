"""Label noise for robustness experiments: flip a seeded share of the training labels.

Noise belongs on the training split only, and applying it there is the caller's job: the trainer
passes ``train_set.labels`` here, trains on ``observed`` and stores all three arrays in the run
(``Run.save_labels``); datasets keep their clean labels and test splits are never touched.

Kinds (where a flipped label goes):

- "symmetric": a uniformly random class other than the true one;
- "pair": the next class, cyclically (``(y + 1) % num_classes``);
- "nearest_class": the class whose mean feature vector is closest (Euclidean) to the true class's
  mean: the confusions a real annotator would make. Needs ``features`` (e.g. flattened images).
- "small_cluster": whole classes are dissolved and their images scattered in small groups into
  the remaining classes, as in PRISM's small-cluster noise (Liu et al., "Noise-resistant Deep
  Metric Learning with Ranking-based Instance Selection", CVPR 2021,
  github.com/alibaba-edu/Ranking-based-Instance-Selection, whose CUB lists spread each dissolved
  class over 15-31 labels). The rate is the share of images whose class is dissolved: classes
  are dissolved in a seeded order, as many as bring that share closest to the rate (at least one
  class stays); each dissolved class's images are shuffled and cut into groups of 1 to
  ``SMALL_CLUSTER_MAX`` images (sizes drawn uniformly), each group given to a different
  remaining class while there are enough of them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from dmlviz.registry.settings import NOISE_KINDS  # the noise_kind setting's choices

CHUNK = 1024  # class means compared at a time by "nearest_class"
SMALL_CLUSTER_MAX = 5  # largest group of a dissolved class (mean 3: ~20 labels for CUB's 60)


@dataclass
class NoisyLabels:
    """Training labels before and after noise: ``observed[i] != clean[i]`` exactly where
    ``flipped[i]``; ``rate``, ``kind`` and ``seed`` are the arguments that made them."""

    observed: np.ndarray
    clean: np.ndarray
    flipped: np.ndarray
    rate: float
    kind: str
    seed: int


def inject_label_noise(
    labels: np.ndarray,
    rate: float,
    kind: str = "symmetric",
    seed: int = 0,
    num_classes: int | None = None,
    features: np.ndarray | None = None,
) -> NoisyLabels:
    """Flip exactly ``round(rate * n)`` of the ``n`` labels, chosen uniformly at random (for
    "small_cluster": the labels of whole classes, as close to ``rate * n`` as they come).

    Args:
        labels: ``(n,)`` clean integer labels in ``0..num_classes-1``.
        rate: share of labels to flip, in ``[0, 1)``.
        kind: one of ``NOISE_KINDS`` (see the module docstring).
        seed: the same seed (and arguments) give the same flips.
        num_classes: size of the label space (None: ``labels.max() + 1``); symmetric and pair
            noise may flip to any class of it.
        features: ``(n, f)`` one feature vector per sample; required by "nearest_class" when
            ``rate > 0``, ignored otherwise.

    Returns:
        ``NoisyLabels`` with int64 ``observed`` and ``clean`` and a bool ``flipped`` mask. No label
        is ever "flipped" to itself.
    """
    clean = np.asarray(labels)
    if clean.ndim != 1 or not (np.issubdtype(clean.dtype, np.integer) or clean.size == 0):
        raise ValueError(
            f"labels must be a 1-d integer array, got shape {clean.shape} dtype {clean.dtype}"
        )
    clean = clean.astype(np.int64)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"rate={rate!r} is invalid: use a number in [0, 1)")
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind={kind!r} is invalid: use one of {', '.join(NOISE_KINDS)}")
    if clean.size and clean.min() < 0:
        raise ValueError(f"labels must be >= 0, got {clean.min()}")
    if num_classes is None:
        num_classes = int(clean.max()) + 1 if clean.size else 0
    elif clean.size and num_classes <= clean.max():
        raise ValueError(
            f"num_classes={num_classes!r} is invalid: the labels go up to {clean.max()}"
        )
    n_flip = round(float(rate) * len(clean))
    result = NoisyLabels(
        observed=clean.copy(),
        clean=clean,
        flipped=np.zeros(len(clean), dtype=bool),
        rate=float(rate),
        kind=kind,
        seed=int(seed),
    )
    if rate == 0:
        return result
    if num_classes < 2:
        raise ValueError(
            f"rate={rate!r} needs at least 2 classes to flip between, there are {num_classes}"
        )
    if kind == "nearest_class":
        nearest = _nearest_classes(clean, features)
    rng = np.random.default_rng(seed)
    if kind == "small_cluster":
        result.observed = _scatter_classes(clean, float(rate), rng)
        result.flipped = result.observed != clean
        return result
    chosen = np.sort(rng.choice(len(clean), size=n_flip, replace=False))
    y = clean[chosen]
    if kind == "symmetric":
        # Adding 1..K-1 (mod K) reaches every other class with equal probability.
        new = (y + rng.integers(1, num_classes, size=n_flip)) % num_classes
    elif kind == "pair":
        new = (y + 1) % num_classes
    else:
        new = nearest[y]
    result.observed[chosen] = new
    result.flipped[chosen] = True
    return result


def _scatter_classes(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """The labels after small-cluster noise (see the module docstring): dissolved classes'
    images moved in groups of 1 to ``SMALL_CLUSTER_MAX`` to remaining classes."""
    present, sizes = np.unique(labels, return_counts=True)
    if len(present) < 2:
        raise ValueError(
            f'kind="small_cluster" needs at least 2 classes with samples, there are {len(present)}'
        )
    order = rng.permutation(len(present))
    dissolved_images = np.concatenate([[0], np.cumsum(sizes[order])])[: len(present)]
    count = int(np.abs(dissolved_images - rate * len(labels)).argmin())  # classes dissolved
    dissolved, remaining = present[order[:count]], present[order[count:]]
    observed = labels.copy()
    for label in dissolved:
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = np.cumsum(rng.integers(1, SMALL_CLUSTER_MAX + 1, size=len(members)))
        groups = np.split(members, cuts[cuts < len(members)])
        targets = rng.choice(remaining, size=len(groups), replace=len(groups) > len(remaining))
        for group, target in zip(groups, targets, strict=True):
            observed[group] = target
    return observed


def _nearest_classes(labels: np.ndarray, features: np.ndarray | None) -> np.ndarray:
    """For each class present in ``labels``: the other present class whose mean feature is closest
    (ties: the smallest label). Indexed by label; -1 for absent labels."""
    if features is None:
        raise ValueError(
            'kind="nearest_class" needs features: one vector per sample, shape (n, f), e.g. '
            "flattened images or embeddings"
        )
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(
            f"features must have shape ({len(labels)}, f) (one row per label), got {features.shape}"
        )
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    present, inverse = np.unique(labels, return_inverse=True)
    if len(present) < 2:
        raise ValueError(
            f'kind="nearest_class" needs at least 2 classes with samples, there are {len(present)}'
        )
    sums = np.zeros((len(present), features.shape[1]))
    np.add.at(sums, inverse, features)
    means = sums / np.bincount(inverse)[:, None]
    squared = (means**2).sum(1)
    closest = np.empty(len(present), dtype=np.int64)
    for start in range(0, len(present), CHUNK):  # C x C distances would not fit for SOP
        rows = slice(start, start + CHUNK)
        distances = squared[rows, None] + squared[None, :] - 2 * means[rows] @ means.T
        distances[np.arange(distances.shape[0]), np.arange(len(present))[rows]] = np.inf
        closest[rows] = distances.argmin(axis=1)
    nearest = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
    nearest[present] = present[closest]
    return nearest
