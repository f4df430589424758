"""A preset against the paper defaults: each loss retrained with both, on validation and on test.

``compare_presets`` is what ``benchmarks/preset_quality.py`` reports (docs/tuning.md): it checks
that a shipped tuned preset beats the paper defaults on folds the search did not score, and shows
what that means on the test split.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.experiments.runner import share_threads, train_many
from dmlviz.experiments.tune import MAX_FOLDS, base_config, fold_config, fold_count, map_at_r
from dmlviz.runs import Run, RunError, is_run


def compare_presets(
    dataset: str,
    losses: list[str],
    out: str | Path,
    noise_rates: tuple[float, ...] = (0.0, 0.4),
    seeds: tuple[int, ...] = (0, 1, 2),
    kinds: tuple[str, ...] = ("paper", "tuned"),
    val_seed: int = 100,
    epochs: int | None = None,
    root: str | None = None,
    jobs: int = 1,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Each loss's paper defaults against its shipped preset, at each noise rate: one row per
    (loss, preset kind, noise rate) with ``dataset``, ``loss``, ``preset`` ("paper" or "tuned"),
    ``source`` (what the tuned kind found: "tuned on validation", or "paper defaults" where no
    search ran), ``noise_rate``, ``val_map@r`` (mean over the same validation folds the search
    used, retrained with fresh seeds ``val_seed + fold``, so not the search's own selected score)
    and ``val_map@r_folds``, ``test_map@r`` and ``test_map@r_std`` (trained on the whole train
    split with each of ``seeds``, scored on the test split) and ``test_map@r_seeds``. ``kinds``
    limits the preset kinds measured.

    Noise flips the training labels only; validation and test are scored on clean labels. Runs go
    to ``<out>/<loss>-<kind>-noise<rate%>/{fold-<f>,seed-<s>}`` and finished ones are reused, so
    an interrupted comparison resumes. ``jobs`` trains that many runs in parallel processes.
    """
    from dmlviz.presets import preset

    say = log or (lambda message: None)
    out = Path(out)
    tasks, cells = [], []
    for loss in losses:
        tuned = preset(dataset, loss)
        searched = tuned if tuned["source"] == "tuned on validation" else {}
        base = base_config(dataset, loss, epochs, searched.get("val_fraction"), 0, 0.0, root,
                           searched.get("protocol"))  # fmt: skip
        folds = searched.get("folds") or min(
            MAX_FOLDS,
            fold_count(
                dataset, base["val_fraction"], root, base["split_seed"], base["protocol"]
            ),  # fmt: skip
        )
        for kind in kinds:
            entry = preset(dataset, loss, kind=kind)
            settings = {"loss_kwargs": entry["loss_kwargs"]}
            if entry["lr"] is not None:
                settings["lr"] = entry["lr"]
            for rate in noise_rates:
                folder = out / f"{loss}-{kind}-noise{rate * 100:g}"
                noisy = {"noise_rate": float(rate), "preset_source": entry["source"]}
                val = {**base, **settings, **noisy, "seed": val_seed, "noise_seed": val_seed}
                test = _test_config(dataset, loss, kind, noisy, base["protocol"], epochs, root)
                cell = {"dataset": dataset, "loss": loss, "preset": kind,
                        "source": entry["source"], "noise_rate": float(rate), "folds": [],
                        "seeds": []}  # fmt: skip
                for fold in range(folds):
                    tasks.append(
                        (cell, "folds", fold_config(val, fold), folder / f"fold-{fold}", "val")
                    )
                for seed in seeds:
                    config = {**test, "seed": seed, "noise_seed": seed}
                    tasks.append((cell, "seeds", config, folder / f"seed-{seed}", "test"))
                cells.append(cell)
    configs = share_threads([config for _, _, config, _, _ in tasks], jobs)
    scores = train_many(
        [
            (config, folder, split)
            for config, (_, _, _, folder, split) in zip(configs, tasks, strict=True)
        ],
        jobs,
        _score_task,
        lambda task, score: say(f"{task[1]}: {task[2]} MAP@R {score:.4f}"),
    )
    for (cell, part, _, _, _), score in zip(tasks, scores, strict=True):
        cell[part].append(score)
    return [_comparison_row(cell) for cell in cells]


def _test_config(
    dataset: str,
    loss: str,
    kind: str,
    noisy: dict[str, Any],
    protocol: str,
    epochs: int | None,
    root: str | None,
) -> dict[str, Any]:
    """The config of the runs that score preset ``kind`` on the test split (before their seed):
    trained on the whole train split with ``noisy``'s labels, evaluated once at the end."""
    from dmlviz.train import default_config

    test = default_config(dataset, loss, presets=kind)
    test.update(noisy, protocol=protocol, eval_every=0, tensorboard=False)
    if epochs is not None:
        test["epochs"] = epochs
    if root is not None:
        test["dataset_root"] = root
    return test


def _comparison_row(cell: dict[str, Any]) -> dict[str, Any]:
    import statistics

    folds, seeds = cell.pop("folds"), cell.pop("seeds")
    return {
        **cell,
        "val_map@r": round(statistics.fmean(folds), 4),
        "val_map@r_folds": [round(v, 4) for v in folds],
        "test_map@r": round(statistics.fmean(seeds), 4),
        "test_map@r_std": round(statistics.stdev(seeds), 4) if len(seeds) > 1 else 0.0,
        "test_map@r_seeds": [round(v, 4) for v in seeds],
    }


def _score_task(task: tuple[dict[str, Any], Path, str]) -> float:
    """``train_and_score`` of one ``(config, folder, split)`` (a worker process's job)."""
    return train_and_score(*task)


def train_and_score(
    config: dict[str, Any], folder: str | Path, split: str, log: Callable[[str], None] | None = None
) -> float:
    """Train ``config`` into ``folder`` (reusing a run that finished there with the same config;
    anything else there is replaced) and return its MAP@R on ``split``."""
    from dmlviz.train import resolve_config, train

    folder = Path(folder)
    config = {**config, "name": folder.name}
    run = None
    if is_run(folder):
        try:
            done = Run.load(folder)
            if done.status().get("state") == "finished" and _same_run(done.config, config):
                run = done
        except (RunError, OSError, ValueError):  # unreadable leftovers: train afresh below
            run = None
    if run is None:
        shutil.rmtree(folder, ignore_errors=True)
        run = train(resolve_config(config), folder, progress=False)
    score = map_at_r(run, split)
    if log is not None:
        log(f"{folder}: {split} MAP@R {score:.4f}")
    return score


def _same_run(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    from dmlviz.train.config import RECORDED_KEYS

    ignored = {*RECORDED_KEYS, "num_threads", "image_size", "in_channels"}
    return all(stored.get(k) == v for k, v in wanted.items() if k not in ignored)
