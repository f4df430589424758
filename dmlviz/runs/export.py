"""Write a run's embeddings as the plain files ``dmlviz import`` reads: the round trip that lets
anyone try the import on data dmlviz makes itself (``dmlviz export RUN --out DIR``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from dmlviz.runs.atomic import remove_made, staging_folder
from dmlviz.runs.run import Run, RunError, quote

# The splits ``dmlviz import`` reads back, each with the option that names its embeddings.
EXPORT_SPLITS = {
    "test": "--embeddings",
    "query": "--query-embeddings",
    "gallery": "--gallery-embeddings",
    "train": "--train-embeddings",
}


def export_run(
    run: Run, folder: str | Path, images: bool = True, force: bool = False
) -> dict[str, Path]:
    """Write every embedded split of ``run`` that ``dmlviz import`` reads (``EXPORT_SPLITS``:
    test, or query and gallery, and train) into ``folder``.

    Per split: ``<split>.npy`` (float32 embeddings), ``<split>_labels.txt`` (class names, one per
    line; for the train split the labels it was trained with), and with ``images``
    ``<split>_paths.txt`` (paths relative to ``folder``) and the PNGs under ``images/<split>/``
    (for data read from image files, and imported runs, the files' own absolute paths instead,
    no copies).
    A train split with ``labels.npz`` also gets ``train_clean_labels.txt``. Returns
    ``{file kind: path}`` (keys like ``test_embeddings``, ``train_clean_labels``).

    The files are written into a staging folder first and moved into ``folder`` at the end, so
    a failure leaves nothing behind. Raises ``RunError`` when the run has no embeddings to
    export, or ``folder`` is a file or a folder that is not empty (unless ``force``: then the
    files of the same names are replaced, the others kept).
    """
    folder = Path(folder)
    present = [split for split in EXPORT_SPLITS if run.has_embeddings(split)]
    if not present:
        raise RunError(f"{run.path} has no embeddings to export: {run.embed_hint()}")
    _check_folder(folder, force)
    staging, made = staging_folder(folder, "exporting")
    try:
        written = {
            kind: folder / path.relative_to(staging)
            for kind, path in _write(run, staging, present, images).items()
        }
        if folder.exists():
            _move_into(staging, folder)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made(made)
        raise
    return written


def reimport_command(written: dict[str, Path]) -> str:
    """The ``dmlviz import`` command that reads the files ``export_run`` wrote back into a run."""
    options = [("--out", "NEW_RUN")]
    for split, option in EXPORT_SPLITS.items():
        if f"{split}_embeddings" not in written:
            continue
        prefix = option.removesuffix("embeddings")
        options.append((option, written[f"{split}_embeddings"]))
        options.append((f"{prefix}labels", written[f"{split}_labels"]))
        if f"{split}_paths" in written:
            options.append((f"{prefix}images", written[f"{split}_paths"]))
    if "train_clean_labels" in written:
        options.append(("--clean-labels", written["train_clean_labels"]))
    return "dmlviz import " + " ".join(
        f"{option} {value if value == 'NEW_RUN' else quote(value)}" for option, value in options
    )


def _check_folder(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise RunError(f"argument --out: {folder} is a file; give a folder to export into")
    if force or not folder.is_dir():
        return
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise RunError(
            f"argument --out: {folder} is not empty ({shown}): choose a new folder, or give "
            "--force to replace the files an export writes there"
        )


def _write(run: Run, folder: Path, splits: list[str], images: bool) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for split in splits:
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
        if images and hasattr(dataset, "paths"):  # image files (an imported run's, if any)
            if dataset.paths is not None:
                paths = [Path(path).absolute() for path in dataset.paths]
                written[f"{split}_paths"] = _lines(folder / f"{split}_paths.txt", paths)
        elif images:
            image_folder = folder / "images" / split
            image_folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for i in range(len(labels)):
                dataset.image(i).save(image_folder / f"{i}.png")
                paths.append(f"images/{split}/{i}.png")
            written[f"{split}_paths"] = _lines(folder / f"{split}_paths.txt", paths)
    return written


def _move_into(staging: Path, folder: Path) -> None:
    """Move everything in ``staging`` into the existing ``folder``, replacing what has the same
    name (a folder of images as a whole), then remove ``staging``."""
    for entry in staging.iterdir():
        target = folder / entry.name
        if entry.is_dir() and target.is_dir() and entry.name == "images":
            _move_into(entry, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def _lines(path: Path, values) -> Path:
    path.write_text("".join(f"{v}\n" for v in values))
    return path
