"""Training replay: the embeddings of a fixed probe set, stored every ``replay_every`` epochs.

The probe is chosen once, before the first epoch: up to ``PROBE_TRAIN`` train images holding
every flipped one (at most half the probe when there are more flips than that), and up to
``PROBE_TEST`` test images, both drawn with the run's ``noise_seed`` and kept in dataset order.
A snapshot (``replay/epoch_<NNNN>.npz``, float16) is taken before training (epoch 0), every
``replay_every`` epochs and after the last epoch, before that epoch's checkpoint: a crash loses at
most the epoch being trained, whose snapshot is taken again when it is retrained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from dmlviz.runs import Run
from dmlviz.train.embed import compute_embeddings

PROBE_TRAIN = 2000  # train images followed at most
PROBE_TEST = 2000  # test images followed at most
CACHE_BYTES = 64 * 2**20  # a probe split whose images fit in this is held in memory as a tensor


def choose_probe(flipped: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, test indices)`` of the probe set, each sorted.

    Every flipped train image is in it when they fit in half of ``PROBE_TRAIN``; otherwise a
    seeded half of the probe is flipped images and the rest clean ones. Sets smaller than the
    caps are taken whole.
    """
    flipped = np.asarray(flipped, dtype=bool)
    rng = np.random.default_rng(seed)
    n = len(flipped)
    if n <= PROBE_TRAIN:
        train = np.arange(n)
    else:
        flips, clean = np.flatnonzero(flipped), np.flatnonzero(~flipped)
        if len(flips) > PROBE_TRAIN // 2:
            flips = rng.choice(flips, size=PROBE_TRAIN // 2, replace=False)
        clean = rng.choice(clean, size=min(len(clean), PROBE_TRAIN - len(flips)), replace=False)
        train = np.concatenate([flips, clean])
    test = np.arange(n_test)
    if n_test > PROBE_TEST:
        test = rng.choice(n_test, size=PROBE_TEST, replace=False)
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


class Replay:
    """A run's probe set and how often it is embedded; make one with ``Replay.start``."""

    def __init__(
        self, run: Run, train_probe, test_probe, every: int, batch_size: int, workers: int
    ):
        self.run = run
        self.train_probe = train_probe
        self.test_probe = test_probe
        self.every = every
        self.batch_size = batch_size
        self.workers = workers

    @classmethod
    def start(cls, run: Run, config: dict[str, Any], train_set, test_set, noisy) -> Replay | None:
        """The run's replay (the probe recorded in ``replay/probe.npz``, chosen now unless a
        resumed run already has one), or None when ``replay_every`` is 0."""
        every = int(config.get("replay_every") or 0)
        if not every:
            return None
        probe = run.replay_probe()
        if probe is None:
            n_test = len(test_set) if test_set is not None else 0
            train_index, test_index = choose_probe(noisy.flipped, n_test, config["noise_seed"])
            test_labels = np.asarray(test_set.labels)[test_index] if n_test else np.zeros(0, int)
            probe = {
                "train_index": train_index,
                "observed": np.asarray(noisy.observed, dtype=np.int64)[train_index],
                "clean": np.asarray(noisy.clean, dtype=np.int64)[train_index],
                "flipped": np.asarray(noisy.flipped, dtype=bool)[train_index],
                "test_index": test_index,
                "test_labels": np.asarray(test_labels, dtype=np.int64),
            }
            run.save_replay_probe(**probe)
        train_probe = _probe_images(train_set, probe["train_index"])
        test_probe = _probe_images(test_set, probe["test_index"]) if test_set else None
        batch_size = 512 if config["model"] in ("mlp", "convnet") else 128
        return cls(run, train_probe, test_probe, every, batch_size, config["num_workers"])

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether a snapshot is taken after ``epoch`` (0, every ``every``-th, and the last)."""
        return epoch == 0 or epoch % self.every == 0 or epoch == epochs

    def snapshot(self, model: torch.nn.Module, epoch: int, device: torch.device) -> None:
        """Embed the probe set with ``model`` and store it as the snapshot after ``epoch``."""

        def embed(images):
            if isinstance(images, torch.Tensor):  # held in memory: no data loader to go through
                return _embed_tensor(model, images, device, self.batch_size)
            return compute_embeddings(model, images, device, self.batch_size, self.workers)

        train = embed(self.train_probe)
        test = np.zeros((0, train.shape[1]), np.float32)
        if self.test_probe is not None:
            test = embed(self.test_probe)
        self.run.save_replay_snapshot(epoch, train, test)


def _probe_images(dataset, index: np.ndarray) -> torch.Tensor | Subset:
    """The probe's images of ``dataset`` as one tensor when they fit in ``CACHE_BYTES`` (small
    images: a snapshot then costs a forward pass and nothing else), else a ``Subset`` to load."""
    subset = Subset(dataset, index.tolist())
    if not len(subset) or subset[0][0].numel() * 4 * len(subset) > CACHE_BYTES:
        return subset
    return torch.stack([subset[i][0] for i in range(len(subset))])


def _embed_tensor(
    model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int
) -> np.ndarray:
    """``compute_embeddings`` of images already in memory: (n, d) float32, the model's training
    mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            chunks = [model(batch.to(device)).float().cpu() for batch in images.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks).numpy()
