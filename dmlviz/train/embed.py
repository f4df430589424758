"""Embeddings of whole splits: for evaluation during training, for a finished run's files, and
for an untrained model's zero-shot baseline run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dmlviz.evaluate import evaluate_run
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
    when the data has its own), and val when ``val_fraction`` holds one out of train. Raises
    ``RunError`` for an imported run (no model, no dataset: its embeddings come from files)."""
    from dmlviz.data import split_layout
    from dmlviz.runs import RunError
    from dmlviz.runs.imported import is_imported

    c = run.config
    if is_imported(c):
        raise RunError(f"{run.path} cannot be embedded: {run.embed_hint()}")
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
    ``dmlviz.evaluate.evaluate_run``; returns the test metrics (None when the run has no test
    split's)."""
    embed_run(run, run_splits(run), device)
    evaluate_run(run)
    return run.eval_metrics("test")


def embed_untrained(
    config: dict[str, Any], out: str | Path, device: str | None = None
) -> tuple[Run, dict[str, Any] | None]:
    """Write a run directory ``out`` for ``config``'s model as it starts, without training (a
    zero-shot baseline): its weights, clean labels, embeddings of every split and evaluation, so
    the dashboard can compare it with trained runs. Returns the run and its test metrics.

    ``config`` holds config keys (``dataset`` and ``model`` required, ``loss`` ignored). When
    ``embedding_dim`` is not given the head is the identity on the backbone's pooled features,
    so the embeddings are the backbone's own features, L2-normalised (with ``init_from``: that
    run's trained head, e.g. to embed another dataset with it). The run has ``loss`` None
    and 0 epochs; ``dmlviz train --init-from`` can start from it."""
    from dmlviz import __version__
    from dmlviz.data import inject_label_noise
    from dmlviz.models.head import EmbeddingHead
    from dmlviz.runs import CONFIG, Run, RunError
    from dmlviz.train.config import ConfigError, resolve_config
    from dmlviz.train.start import starting_model

    out = Path(out)
    if (out / CONFIG).exists():
        raise RunError(f"{out} already holds a run; choose another --out or delete it")
    if config.get("dataset") is None:
        raise ConfigError("dataset", None, "is required")
    identity_head = config.get("embedding_dim") is None and not config.get("init_from")
    full = resolve_config({**config, "loss": "contrastive"})  # any loss: it plays no part
    train_set = Run(out, full).dataset("train")
    full = {
        **full,
        "name": full["name"] or out.name,
        "in_channels": train_set.in_channels,
        "image_size": full["image_size"] or train_set.image_size,
    }
    model = starting_model(full, Run(out, full).model_kwargs())
    if identity_head:
        features = model.head.linear.in_features
        model.head = EmbeddingHead(features, features, full["layer_norm"])
        with torch.no_grad():
            model.head.linear.weight.copy_(torch.eye(features))
            model.head.linear.bias.zero_()
    full = {
        **full,
        "loss": None,
        "loss_kwargs": {},
        "epochs": 0,
        "embedding_dim": model.embedding_dim,
        "preset_source": "user settings",
        "weights_source": model.weights_source,
        "dmlviz_version": __version__,
        "torch_version": torch.__version__,
    }
    labels = np.asarray(train_set.labels)
    run = Run.create(out, full)
    run.save_labels(inject_label_noise(labels, 0.0, num_classes=train_set.num_classes))
    run.save_model(model)
    run.set_status("finished", epoch=0, epochs=0)
    return run, finish_run(run, device)
