"""Write a run's embeddings as the plain files ``dmlviz import`` reads: the round trip that lets
anyone try the import on data dmlviz makes itself (``dmlviz export RUN --out DIR``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dmlviz.runs.run import Run, RunError


def export_run(
    run: Run, folder: str | Path, splits: Sequence[str] = ("test", "train"), images: bool = True
) -> dict[str, Path]:
    """Write each embedded split of ``splits`` of ``run`` into ``folder``.

    Per split: ``<split>.npy`` (float32 embeddings), ``<split>_labels.txt`` (class names, one per
    line; for the train split the labels it was trained with), and with ``images``
    ``<split>_paths.txt`` (paths relative to ``folder``) and the PNGs under ``images/<split>/``
    (an imported run's own absolute image paths instead, no copies).
    A train split with ``labels.npz`` also gets ``train_clean_labels.txt``. Returns
    ``{file kind: path}`` (keys like ``test_embeddings``, ``train_clean_labels``). Raises
    ``RunError`` when none of ``splits`` has embeddings.
    """
    folder = Path(folder)
    present = [split for split in splits if run.has_embeddings(split)]
    if not present:
        raise RunError(f"{run.path} has no embeddings of {', '.join(splits)} to export")
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for split in present:
        embeddings, labels = run.embeddings(split)
        dataset = run.dataset(split)
        names = np.asarray(dataset.class_names, dtype=str)
        trained = labels
        noisy = run.labels() if split == "train" else None
        if noisy is not None and len(noisy.observed) == len(labels):
            trained = noisy.observed
            written["train_clean_labels"] = _lines(
                folder / "train_clean_labels.txt", names[noisy.clean]
            )
        written[f"{split}_embeddings"] = folder / f"{split}.npy"
        np.save(written[f"{split}_embeddings"], np.asarray(embeddings, dtype=np.float32))
        written[f"{split}_labels"] = _lines(folder / f"{split}_labels.txt", names[trained])
        if images and hasattr(dataset, "paths"):  # an imported run: its own files, if any
            if dataset.paths is not None:
                written[f"{split}_paths"] = _lines(folder / f"{split}_paths.txt", dataset.paths)
        elif images:
            image_folder = folder / "images" / split
            image_folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for i in range(len(labels)):
                dataset.image(i).save(image_folder / f"{i}.png")
                paths.append(f"images/{split}/{i}.png")
            written[f"{split}_paths"] = _lines(folder / f"{split}_paths.txt", paths)
    return written


def _lines(path: Path, values) -> Path:
    path.write_text("".join(f"{v}\n" for v in values))
    return path
