"""Embeddings of whole splits: for evaluation during training and for a finished run's files."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dmlviz.train.device import pick_device

if TYPE_CHECKING:
    from dmlviz.runs import Run


def compute_embeddings(
    model: torch.nn.Module,
    dataset: Dataset,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
) -> np.ndarray:
    """Embed every sample of ``dataset`` in order; returns (n, d) float32 (rows L2-normalised by
    the model). The model runs in eval mode and gets its previous mode back afterwards."""
    device = torch.device(device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),  # leave the global RNG (training's) alone
    )
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for images, *_ in loader:
                chunks.append(model(images.to(device, non_blocking=True)).float().cpu())
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros((0, getattr(model, "embedding_dim", 0)), dtype=np.float32)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def run_splits(run: Run) -> tuple[str, ...]:
    """The splits a run is embedded and evaluated on: train, then its data's held-out splits
    (``dmlviz.data.split_layout``: test, or query and gallery searched one in the other; val
    when the data has its own), and val when ``val_fraction`` holds one out of train."""
    from dmlviz.data import split_layout

    c = run.config
    held_out = split_layout(c["dataset"], c.get("dataset_root"), c.get("test_root")).held_out
    val = ("val",) if c.get("val_fraction") and "val" not in held_out else ()
    return ("train", *held_out, *val)


def embed_run(
    run: Run, splits: tuple[str, ...] | list[str] = ("train", "test"), device: str | None = None
) -> None:
    """Write ``embeddings/<split>.npz`` (embeddings and CLEAN labels) for each split of ``run``,
    using its saved weights."""
    device = pick_device(device)
    model = run.load_model(device=str(device))
    batch_size = 512 if run.config.get("model") in ("mlp", "convnet") else 128
    for split in splits:
        dataset = run.dataset(split)
        embeddings = compute_embeddings(
            model, dataset, device, batch_size, num_workers=int(run.config.get("num_workers") or 0)
        )
        run.save_embeddings(split, embeddings, dataset.labels)


def finish_run(run: Run, device: str | None = None) -> dict[str, Any] | None:
    """Embed every split of ``run`` (``run_splits``) and evaluate it with
    ``dmlviz.evaluate.evaluate_run``; returns the test metrics, or None when that module is absent."""
    embed_run(run, run_splits(run), device)
    if importlib.util.find_spec("dmlviz.evaluate") is None:
        return None
    from dmlviz.evaluate import evaluate_run

    evaluate_run(run)
    return run.eval_metrics("test")
