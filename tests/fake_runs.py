"""The tests' one builder of run folders without training: ``make_run`` writes a config, blob
embeddings, noisy train labels, metrics, a status, training-replay snapshots, or an imported run,
all through ``dmlviz.runs`` (``Run`` and ``import_embeddings``), so the files are the real
format. tests/conftest.py gives it to tests as the ``make_run`` fixture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.data import NoisyLabels, inject_label_noise
from dmlviz.runs import Run, import_embeddings

# The config keys every run records (``Run.create`` refuses a config without them).
CONFIG = {"dataset": "digits", "model": "mlp", "loss": "rll"}
REPLAY_PROBE = 60  # the train and test images a replay follows (all of them in a smaller run)

Split = tuple[np.ndarray, np.ndarray]  # (embeddings, labels)


def blobs(n: int, classes: int, dim: int, seed: int, spread: float = 4.0) -> Split:
    """``n`` points in ``classes`` Gaussian blobs (sorted labels, near-equal counts): unit noise
    around centres drawn ``spread`` times wider, so neighbours mostly share a label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) * classes // n
    centres = rng.standard_normal((classes, dim)) * spread
    return (centres[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def make_run(
    path: str | Path,
    *,
    splits: Sequence[str] = ("test",),
    n: int = 30,
    classes: int = 3,
    dim: int = 6,
    seed: int = 0,
    embeddings: Mapping[str, Split] | None = None,
    flipped: Sequence[int] | None = None,
    noise_rate: float = 0.0,
    metrics: Sequence[dict[str, Any]] = (),
    status: dict[str, Any] | None = None,
    replay: Sequence[int] = (),
    imported: bool = False,
    config: Mapping[str, Any] | None = None,
) -> Run:
    """Write a run at ``path`` and return it.

    Args:
        splits: the splits given embeddings: ``n`` points of ``classes`` blobs in ``dim``
            dimensions each (``blobs``, seeded ``seed``, ``seed + 1``, ... in this order).
        embeddings: ``{split: (embeddings, labels)}`` to store instead of the blobs.
        flipped: train indices whose label is told one class up (``labels.npz``, written with
            train embeddings); ``noise_rate``: instead, that share flipped by
            ``inject_label_noise`` (symmetric, seed 0).
        metrics: training records appended to ``metrics.jsonl``, in order.
        status: ``set_status``'s arguments (``{"state": "finished", "epoch": 3, ...}``).
        replay: the epochs with a replay snapshot: the first ``REPLAY_PROBE`` train and test
            images, the flipped ones moving epoch by epoch from their own place to that of the
            first unflipped probe image of the class they were told.
        imported: import the splits with ``import_embeddings`` (``test`` and ``train``, their
            labels as text, the input files in the folder ``<path>-inputs``) instead.
        config: the run's config: ``CONFIG`` with ``embedding_dim`` updated by this.
    """
    data = dict(embeddings or {s: blobs(n, classes, dim, seed + i) for i, s in enumerate(splits)})
    dim = next(iter(data.values()))[0].shape[1] if data else dim
    config = {**CONFIG, "embedding_dim": dim, **(config or {})}
    if imported:
        return _import(Path(path), data, config.get("name"))
    run = Run.create(path, config)
    for split, (x, labels) in data.items():
        run.save_embeddings(split, x, labels)
    train = data["train"] if "train" in data else blobs(n, classes, dim, seed)
    noisy = _noisy(train[1], flipped or (), noise_rate)
    if (flipped is not None or noise_rate) and "train" in data:
        run.save_labels(noisy)
    for record in metrics:
        run.append_metrics(record)
    if status:
        run.set_status(**status)
    if replay:
        test = data["test"] if "test" in data else blobs(n, classes, dim, seed + 1)
        _replay(run, replay, train[0], noisy, test)
    return run


def _noisy(clean: np.ndarray, flipped: Sequence[int], rate: float) -> NoisyLabels:
    """The train labels with ``rate`` of them flipped at random, else ``flipped`` told one class
    up (none flipped for neither)."""
    classes = int(clean.max()) + 1
    if rate:
        return inject_label_noise(clean, rate, "symmetric", seed=0, num_classes=classes)
    mask = np.zeros(len(clean), bool)
    mask[list(flipped)] = True
    observed = np.where(mask, (clean + 1) % classes, clean)
    return NoisyLabels(observed, clean, mask, float(mask.mean()), "symmetric", 0)


def _replay(
    run: Run, epochs: Sequence[int], train: np.ndarray, noisy: NoisyLabels, test: Split
) -> None:
    """The probe and one snapshot per epoch (see ``make_run``'s ``replay``)."""
    probe = np.arange(min(REPLAY_PROBE, len(train)))
    test_probe = np.arange(min(REPLAY_PROBE, len(test[0])))
    clean, observed = np.asarray(noisy.clean)[probe], np.asarray(noisy.observed)[probe]
    flipped = np.asarray(noisy.flipped)[probe]
    run.save_replay_probe(train_index=probe, observed=observed, clean=clean, flipped=flipped,
                          test_index=test_probe, test_labels=test[1][test_probe])  # fmt: skip
    start = train[probe]
    told = start[[np.flatnonzero((clean == label) & ~flipped)[0] for label in observed]]
    for step, epoch in enumerate(epochs):
        share = np.where(flipped, step / max(len(epochs) - 1, 1), 0.0)[:, None]
        run.save_replay_snapshot(epoch, (1 - share) * start + share * told, test[0][test_probe])


def _import(path: Path, data: dict[str, Split], name: str | None) -> Run:
    """``import_embeddings`` of ``data``'s test and train splits, from files it writes."""
    inputs = path.with_name(f"{path.name}-inputs")
    inputs.mkdir(parents=True)
    files: dict[str, Path] = {}
    for split, (x, labels) in data.items():
        np.save(inputs / f"{split}.npy", x)
        (inputs / f"{split}.txt").write_text("".join(f"class {c}\n" for c in labels))
        files[split], files[f"{split}_labels"] = inputs / f"{split}.npy", inputs / f"{split}.txt"
    return import_embeddings(
        path,
        files["test"],
        files["test_labels"],
        train_embeddings=files.get("train"),
        train_labels=files.get("train_labels"),
        name=name,
    )


def per_query_table(
    shift: float = 0.0, seed: int = 0, classes: int = 30, per_class: int = 6
) -> pd.DataFrame:
    """A test per-query table whose truth is known: ``classes`` classes of ``per_class`` queries,
    each class its own level of AP@R (the same in every table), each query its own noise
    (seeded ``seed``), all raised by ``shift``; R-precision is AP@R, P@1 is AP@R > 0.5."""
    labels = np.repeat(np.arange(classes), per_class)
    level = np.random.default_rng(1000).uniform(0.2, 0.8, classes)[labels]
    ap = np.clip(level + shift + np.random.default_rng(seed).normal(0, 0.1, len(labels)), 0, 1)
    return pd.DataFrame(
        {
            "query": np.arange(len(labels)),
            "label": labels,
            "r": np.full(len(labels), per_class - 1),
            "ap@r": ap,
            "r_precision": ap,
            "precision@1": (ap > 0.5).astype(float),
        }
    )


def save_per_query(run: Run, table: pd.DataFrame) -> Run:
    """``run`` evaluated on the test split with the per-query ``table`` (no neighbours); returns
    it."""
    neighbours = np.zeros((len(table), 2), dtype=np.int64)
    run.save_eval("test", {"map@r": float(table["ap@r"].mean())}, table, neighbours, neighbours)
    return run
